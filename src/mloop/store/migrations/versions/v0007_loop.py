"""The closed loop: policies, their episodes, the monitor reports they consumed, webhook alerts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the types in schema.py as of this revision.
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String(256)
RunId = sa.String(32)
Path = sa.String(1024)


def upgrade() -> None:
    """Create the loop tables of schema.py as of this revision."""
    op.create_table(
        "policies",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("name", Name, nullable=False),
        sa.Column("deployment", Name, nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cooldown_until", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", Name, nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policies"),
        sa.UniqueConstraint("name", name="uq_policies_name"),
    )
    op.create_index("ix_policies_deployment", "policies", ["deployment"], unique=False)
    op.create_table(
        "episodes",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("policy_id", AutoId, nullable=False),
        sa.Column("open_policy_id", AutoId, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("report_ids", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("pipeline_run_id", RunId, nullable=True),
        sa.Column("candidate_version", sa.Integer(), nullable=True),
        sa.Column("lease_owner", Name, nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("step_started_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name="fk_episodes_policy_id_policies",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_episodes"),
        sa.UniqueConstraint("open_policy_id", name="uq_episodes_open_policy_id"),
    )
    op.create_index(
        "ix_episodes_policy_id_started_at", "episodes", ["policy_id", "started_at"], unique=False
    )
    op.create_table(
        "policy_reports",
        sa.Column("policy_id", AutoId, nullable=False),
        sa.Column("report_id", AutoId, nullable=False),
        sa.Column("episode_id", AutoId, nullable=True),
        sa.Column("consumed_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name="fk_policy_reports_policy_id_policies",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("policy_id", "report_id", name="pk_policy_reports"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("policy_id", AutoId, nullable=False),
        sa.Column("episode_id", AutoId, nullable=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("url", Path, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name="fk_alert_deliveries_policy_id_policies",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
    )
    op.create_index(
        "ix_alert_deliveries_policy_id_at", "alert_deliveries", ["policy_id", "at"], unique=False
    )


def downgrade() -> None:
    """Drop the loop tables (episodes and deliveries go with them)."""
    for table in ("alert_deliveries", "policy_reports", "episodes", "policies"):
        op.drop_table(table)
