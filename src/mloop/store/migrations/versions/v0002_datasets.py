"""Datasets: datasets, their versions, version tags and parents, run inputs, validation results.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the types in schema.py as of this revision.
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
RunId = sa.String(32)
Key = sa.String(250)
Name = sa.String(256)
Digest = sa.String(64)


def _version_fk(column: str, table: str, *, cascade: bool) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        ["dataset_versions.id"],
        name=f"fk_{table}_{column}_dataset_versions",
        ondelete="CASCADE" if cascade else None,
    )


def upgrade() -> None:
    """Create the dataset tables of schema.py as of this revision."""
    op.create_table(
        "datasets",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("name", Name, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("name", name="uq_datasets_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("dataset_id", AutoId, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", Digest, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("storage_digest", Digest, nullable=False),
        sa.Column("schema_json", sa.Text(), nullable=True),
        sa.Column("num_rows", sa.BigInteger(), nullable=True),
        sa.Column("num_files", sa.BigInteger(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("profile_json", sa.Text(), nullable=True),
        sa.Column("run_id", RunId, nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", Name, nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name="fk_dataset_versions_dataset_id_datasets"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_dataset_versions_run_id_runs", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_id_version"),
        sa.UniqueConstraint("dataset_id", "digest", name="uq_dataset_versions_dataset_id_digest"),
    )
    op.create_index("ix_dataset_versions_run_id", "dataset_versions", ["run_id"])

    op.create_table(
        "dataset_version_tags",
        sa.Column("version_id", AutoId, nullable=False),
        sa.Column("key", Key, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _version_fk("version_id", "dataset_version_tags", cascade=True),
        sa.PrimaryKeyConstraint("version_id", "key", name="pk_dataset_version_tags"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "dataset_version_parents",
        sa.Column("version_id", AutoId, nullable=False),
        sa.Column("parent_id", AutoId, nullable=False),
        _version_fk("version_id", "dataset_version_parents", cascade=True),
        _version_fk("parent_id", "dataset_version_parents", cascade=False),
        sa.PrimaryKeyConstraint("version_id", "parent_id", name="pk_dataset_version_parents"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_dataset_version_parents_parent_id", "dataset_version_parents", ["parent_id"]
    )

    op.create_table(
        "run_inputs",
        sa.Column("run_id", RunId, nullable=False),
        sa.Column("version_id", AutoId, nullable=False),
        sa.Column("context", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_inputs_run_id_runs", ondelete="CASCADE"
        ),
        _version_fk("version_id", "run_inputs", cascade=False),
        sa.PrimaryKeyConstraint("run_id", "version_id", "context", name="pk_run_inputs"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_run_inputs_version_id", "run_inputs", ["version_id"])

    op.create_table(
        "validation_results",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("version_id", AutoId, nullable=True),
        sa.Column("run_id", RunId, nullable=True),
        sa.Column("suite", Name, nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", Name, nullable=False),
        _version_fk("version_id", "validation_results", cascade=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_validation_results_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_validation_results"),
    )
    op.create_index("ix_validation_results_version_id", "validation_results", ["version_id"])
    op.create_index("ix_validation_results_run_id", "validation_results", ["run_id"])


def downgrade() -> None:
    """Drop the dataset tables (the data goes with them)."""
    for table in (
        "validation_results",
        "run_inputs",
        "dataset_version_parents",
        "dataset_version_tags",
        "dataset_versions",
        "datasets",
    ):
        op.drop_table(table)
