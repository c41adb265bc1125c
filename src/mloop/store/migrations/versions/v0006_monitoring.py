"""Monitoring: monitors of deployments, their reports per window and per-feature results.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the types in schema.py as of this revision.
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String(256)
Key = sa.String(250)
Digest = sa.String(64)
Number = sa.Float(precision=53)


def upgrade() -> None:
    """Create the monitoring tables of schema.py as of this revision."""
    op.create_table(
        "monitors",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("name", Name, nullable=False),
        sa.Column("deployment", Name, nullable=False),
        sa.Column("reference", Name, nullable=False),
        sa.Column("reference_version_id", AutoId, nullable=False),
        sa.Column("window", sa.String(64), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("reference_digest", Digest, nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", Name, nullable=False),
        sa.ForeignKeyConstraint(
            ["reference_version_id"],
            ["dataset_versions.id"],
            name="fk_monitors_reference_version_id_dataset_versions",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_monitors"),
        sa.UniqueConstraint("name", name="uq_monitors_name"),
    )
    op.create_index("ix_monitors_deployment", "monitors", ["deployment"], unique=False)
    op.create_table(
        "monitor_reports",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("monitor_id", AutoId, nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("window_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("labelled_rows", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("alerts", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name="fk_monitor_reports_monitor_id_monitors",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_reports"),
        sa.UniqueConstraint(
            "monitor_id", "window_start_ms", name="uq_monitor_reports_monitor_id_window_start_ms"
        ),
    )
    op.create_table(
        "monitor_results",
        sa.Column("report_id", AutoId, nullable=False),
        sa.Column("check", sa.String(32), nullable=False),
        sa.Column("feature", Key, nullable=False),
        sa.Column("statistic", sa.String(64), nullable=False),
        sa.Column("value", Number, nullable=True),
        sa.Column("threshold", Number, nullable=True),
        sa.Column("p_value", Number, nullable=True),
        sa.Column("drifted", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["monitor_reports.id"],
            name="fk_monitor_results_report_id_monitor_reports",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "report_id", "check", "feature", "statistic", name="pk_monitor_results"
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    """Drop the monitoring tables (the reports go with them)."""
    for table in ("monitor_results", "monitor_reports", "monitors"):
        op.drop_table(table)
