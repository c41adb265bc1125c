"""Model registry: registered models, versions, tags, aliases and their history, records
(evaluations, gate decisions, approvals) and alias policies.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the types in schema.py as of this revision.
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Key = sa.String(250)
Name = sa.String(256)


def upgrade() -> None:
    """Create the registry tables of schema.py as of this revision."""
    op.create_table(
        "registered_models",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("name", Name, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_table(
        "alias_history",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("model_id", AutoId, nullable=False),
        sa.Column("alias", Key, nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("previous", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", Name, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name="fk_alias_history_model_id_registered_models",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alias_history"),
    )
    op.create_index(
        "ix_alias_history_model_id_alias_id",
        "alias_history",
        ["model_id", "alias", "id"],
        unique=False,
    )
    op.create_table(
        "alias_policies",
        sa.Column("model_id", AutoId, nullable=False),
        sa.Column("alias", Key, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name="fk_alias_policies_model_id_registered_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_alias_policies"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("model_id", AutoId, nullable=False),
        sa.Column("key", Key, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name="fk_registered_model_tags_model_id_registered_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "key", name="pk_registered_model_tags"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "model_versions",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("model_id", AutoId, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("package_digest", sa.String(64), nullable=False),
        sa.Column("flavor", sa.String(64), nullable=False),
        sa.Column("signature_json", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", Name, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name="fk_model_versions_model_id_registered_models",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_model_versions_run_id_runs", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"], unique=False)
    op.create_table(
        "model_aliases",
        sa.Column("model_id", AutoId, nullable=False),
        sa.Column("alias", Key, nullable=False),
        sa.Column("version_id", AutoId, nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name="fk_model_aliases_model_id_registered_models",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name="fk_model_aliases_version_id_model_versions"
        ),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_model_aliases"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "model_version_records",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("version_id", AutoId, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", Key, nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", Name, nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_model_version_records_version_id_model_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_version_records"),
    )
    op.create_index(
        "ix_model_version_records_version_id_kind",
        "model_version_records",
        ["version_id", "kind"],
        unique=False,
    )
    op.create_table(
        "model_version_tags",
        sa.Column("version_id", AutoId, nullable=False),
        sa.Column("key", Key, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_model_version_tags_version_id_model_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name="pk_model_version_tags"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    """Drop the registry tables (the data goes with them)."""
    for table in (
        "model_version_tags",
        "model_version_records",
        "model_aliases",
        "model_versions",
        "registered_model_tags",
        "alias_policies",
        "alias_history",
        "registered_models",
    ):
        op.drop_table(table)
