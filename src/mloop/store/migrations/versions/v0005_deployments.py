"""Deployments: what a serving endpoint serves, and every change of it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the types in schema.py as of this revision.
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String(256)
Key = sa.String(250)


def upgrade() -> None:
    """Create the deployment tables of schema.py as of this revision."""
    op.create_table(
        "deployments",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("name", Name, nullable=False),
        sa.Column("model_id", AutoId, nullable=False),
        sa.Column("alias", Key, nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("canary_version", sa.Integer(), nullable=True),
        sa.Column("canary_percent", sa.Float(precision=53), nullable=False),
        sa.Column("shadow_version", sa.Integer(), nullable=True),
        sa.Column("sticky_key", Key, nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["registered_models.id"], name="fk_deployments_model_id_registered_models"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.UniqueConstraint("name", name="uq_deployments_name"),
    )
    op.create_index("ix_deployments_model_id", "deployments", ["model_id"], unique=False)
    op.create_table(
        "deployment_history",
        sa.Column("deployment_id", AutoId, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("after", sa.Text(), nullable=False),
        sa.Column("undoes", sa.Integer(), nullable=True),
        sa.Column("actor", Name, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_deployment_history_deployment_id_deployments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", "revision", name="pk_deployment_history"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    """Drop the deployment tables (the data goes with them)."""
    for table in ("deployment_history", "deployments"):
        op.drop_table(table)
