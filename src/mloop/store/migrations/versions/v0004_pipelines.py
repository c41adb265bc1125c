"""Pipelines: the step cache and cron schedules.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the types in schema.py as of this revision.
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String(256)


def upgrade() -> None:
    """Create the pipeline tables of schema.py as of this revision."""
    op.create_table(
        "schedules",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("name", Name, nullable=False),
        sa.Column("pipeline", sa.String(1024), nullable=False),
        sa.Column("cron", Name, nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_fire_at", sa.BigInteger(), nullable=False),
        sa.Column("last_fired_at", sa.BigInteger(), nullable=True),
        sa.Column("last_run_id", sa.String(32), nullable=True),
        sa.Column("lease_owner", Name, nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.UniqueConstraint("name", name="uq_schedules_name"),
    )
    op.create_index(
        "ix_schedules_enabled_next_fire_at", "schedules", ["enabled", "next_fire_at"], unique=False
    )
    op.create_table(
        "step_cache",
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("step", Name, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("parts", sa.Text(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_step_cache_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cache_key", name="pk_step_cache"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_step_cache_run_id", "step_cache", ["run_id"], unique=False)
    op.create_index(
        "ix_step_cache_step_created_at", "step_cache", ["step", "created_at"], unique=False
    )


def downgrade() -> None:
    """Drop the pipeline tables (the data goes with them)."""
    for table in ("schedules", "step_cache"):
        op.drop_table(table)
