"""Dataset versions: register a table or a folder, look versions up, load, materialise, diff.

A table (DataFrame, Arrow table, polars frame, or a CSV/Parquet/JSON-lines file) is stored as
one Parquet blob in the artifact store and named by :func:`~mloop.data.digest.table_digest`, so
the same rows registered twice are the same version. A folder of arbitrary files is stored file
by file, with a manifest of per-file digests (see :mod:`mloop.data.manifest`). Either way the
blobs are written first and the version is recorded in one transaction after them, so a failure
leaves no half-registered version (only unreferenced blobs, which garbage collection removes).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, InvalidState, NotFound
from mloop.store.base import DatasetKind, DatasetVersion, NewDatasetVersion, ValidationRecord
from mloop.store.datasets import check_dataset_name, parse_ref
from mloop.tracking.fluent import client_or_default, run_id_of

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console

    from mloop.data.manifest import Manifest
    from mloop.data.profile import DatasetProfile
    from mloop.data.validation import ValidationResult
    from mloop.tracking import TrackingClient

__all__ = [
    "TABLE_FILE",
    "DatasetDiff",
    "get",
    "list_datasets",
    "list_versions",
    "load",
    "lookup",
    "parse_ref",
    "record_validation",
    "register",
]

#: The path of a table version's Parquet file among the version's blobs.
TABLE_FILE = "data.parquet"


def lookup(
    ref: str | DatasetVersion, *, client: TrackingClient | None = None, with_profile: bool = True
) -> DatasetVersion:
    """The recorded version a reference names (``name`` alone: the newest). Raises NotFound."""
    if isinstance(ref, DatasetVersion):
        if ref.profile is None and with_profile and ref.kind == DatasetKind.TABLE:
            return client_or_default(client).store.get_dataset_version(ref.dataset, ref.version)
        return ref
    name, number = parse_ref(ref)
    return client_or_default(client).store.get_dataset_version(
        name, number, with_profile=with_profile
    )


def _schema(table: pa.Table) -> list[dict[str, Any]]:
    from mloop.data.digest import canonical_type

    return [
        {"name": f.name, "type": str(canonical_type(f.type)), "nullable": bool(f.nullable)}
        for f in table.schema
    ]


def _check_table(table: pa.Table) -> pa.Table:
    if table.num_columns == 0:
        raise InvalidInput("the data has no columns; there is nothing to register")
    names = table.column_names
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InvalidInput(f"the data has duplicate column names {duplicated}; rename them first")
    return table


def _table_of(data: object, data_format: str | None) -> pa.Table:
    from mloop.data.frames import as_table
    from mloop.data.io import read_table

    if isinstance(data, str | os.PathLike):
        return read_table(data, format=data_format)
    if type(data).__module__.startswith("polars"):
        to_arrow = getattr(data, "to_arrow", None)
        if callable(to_arrow):
            return to_arrow()
    return as_table(data)


def register(
    name: str,
    data: object,
    *,
    kind: DatasetKind | str | None = None,
    format: str | None = None,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    parents: Sequence[str | DatasetVersion] = (),
    run: object = None,
    client: TrackingClient | None = None,
) -> DatasetVersion:
    """Register ``data`` as a version of dataset ``name``; the same content returns the version
    it already is. ``data`` is a DataFrame, Arrow table, polars frame, a data file, or a folder
    (a folder is a set of files unless ``kind="table"``, which reads it as one table)."""
    check_dataset_name(name)
    client = client_or_default(client)
    if kind is not None:
        try:
            kind = DatasetKind(kind)
        except ValueError:
            raise InvalidInput(f"kind must be 'table' or 'files', got {kind!r}") from None
    is_path = isinstance(data, str | os.PathLike)
    if is_path and kind is None:
        path = Path(data)  # type: ignore[arg-type]
        if not path.exists():
            raise NotFound(f"no such file or folder: {path}")
        kind = DatasetKind.FILES if path.is_dir() else DatasetKind.TABLE
    if kind == DatasetKind.FILES and not is_path:
        raise InvalidInput("a 'files' dataset is registered from a folder path")
    parent_ids = [lookup(p, client=client, with_profile=False).id for p in parents]
    run_id = run_id_of(run)
    tag_map = {str(k): str(v) for k, v in (tags or {}).items()}
    if kind == DatasetKind.FILES:
        root = Path(data)  # type: ignore[arg-type]
        found = _scan(client, root)
        existing = client.store.find_dataset_version(name, found.digest)
        if existing is not None:
            return existing
        new = _files_version(client, root, found)
    else:
        from mloop.data.digest import table_digest

        table = _check_table(_table_of(data, format))
        digest = table_digest(table)
        existing = client.store.find_dataset_version(name, digest)
        if existing is not None:
            return existing
        new = _table_version(client, table, digest)
    new = dataclasses.replace(
        new, parents=parent_ids, run_id=run_id, description=description, tags=tag_map
    )
    version, _ = client.store.create_dataset_version(name, new, actor=client.settings.actor)
    return version


def _table_version(client: TrackingClient, table: pa.Table, digest: str) -> NewDatasetVersion:
    from mloop.data.io import write_table
    from mloop.data.profile import profile

    stats = profile(table)
    with tempfile.TemporaryDirectory(prefix="mloop-dataset-") as folder:
        path = Path(folder) / TABLE_FILE
        write_table(table, path)
        ref = client.artifacts.put_file(path)
    return NewDatasetVersion(
        digest=digest,
        kind=DatasetKind.TABLE,
        storage_digest=ref.digest,
        size=ref.size,
        files=[(TABLE_FILE, ref.digest, ref.size)],
        schema=_schema(table),
        num_rows=table.num_rows,
        profile=stats.to_dict(),
    )


def _scan(client: TrackingClient, root: Path) -> Manifest:
    from mloop.data import manifest as mf

    cache = mf.HashCache(client.settings.home_path / "cache" / "hashes.db")
    try:
        return mf.scan_folder(root, cache=cache)
    finally:
        cache.close()


def _files_version(client: TrackingClient, root: Path, found: Manifest) -> NewDatasetVersion:
    from mloop.data import manifest as mf

    mf.store_folder(client.artifacts, root, found)
    body = found.to_bytes()
    ref = client.artifacts.put_bytes(body)
    files = [(MANIFEST_FILE, ref.digest, ref.size)]
    files.extend((f"files/{e.path}", e.digest, e.size) for e in found.files)
    return NewDatasetVersion(
        digest=found.digest,
        kind=DatasetKind.FILES,
        storage_digest=ref.digest,
        size=found.total_size,
        files=files,
        num_files=len(found.files),
    )


#: The path of a folder version's manifest among the version's blobs.
MANIFEST_FILE = "manifest"


def load(
    ref: str | DatasetVersion,
    *,
    columns: Sequence[str] | None = None,
    client: TrackingClient | None = None,
) -> pa.Table:
    """Read a table version back as an Arrow table (verified against its digest)."""
    from mloop.data.io import read_table

    client = client_or_default(client)
    version = lookup(ref, client=client, with_profile=False)
    if version.kind != DatasetKind.TABLE:
        raise InvalidState(
            f"{version.ref} is a folder of files, not a table; use mloop.data.get to materialise it"
        )
    with tempfile.TemporaryDirectory(prefix="mloop-dataset-") as folder:
        path = Path(folder) / TABLE_FILE
        client.artifacts.download(version.storage_digest, path)
        table = read_table(path, format="parquet")
        if columns is not None:
            missing = [c for c in columns if c not in table.column_names]
            if missing:
                raise InvalidInput(f"{version.ref} has no columns {missing}")
            table = table.select(list(columns))
        return table


def get(
    ref: str | DatasetVersion,
    dest: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    client: TrackingClient | None = None,
) -> Path:
    """Materialise a version at ``dest``: a table as a Parquet file (``dest`` may be a folder,
    which then receives ``<name>.parquet``), a folder of files as that folder. Returns the
    path written; every byte is verified against its digest first."""
    client = client_or_default(client)
    version = lookup(ref, client=client, with_profile=False)
    target = Path(dest)
    if version.kind == DatasetKind.TABLE:
        if target.is_dir():
            target = target / f"{version.dataset}.parquet"
        if target.exists() and not overwrite:
            raise InvalidState(f"{target} exists; pass overwrite=True (--overwrite) to replace it")
        client.artifacts.download(version.storage_digest, target)
        return target
    from mloop.data import manifest as mf

    found = mf.Manifest.from_bytes(client.artifacts.get_bytes(version.storage_digest))
    mf.materialise(client.artifacts, found, target, overwrite=overwrite)
    return target


def list_datasets(*, client: TrackingClient | None = None) -> list[Any]:
    """Every dataset with its number of versions and newest version."""
    return client_or_default(client).store.list_datasets()


def list_versions(name: str, *, client: TrackingClient | None = None) -> list[DatasetVersion]:
    """The versions of a dataset, oldest first."""
    return client_or_default(client).store.list_dataset_versions(check_dataset_name(name))


def record_validation(
    result: ValidationResult,
    *,
    dataset: str | DatasetVersion | None = None,
    run: object = None,
    client: TrackingClient | None = None,
) -> ValidationRecord:
    """Store a validation result with a dataset version and/or a run."""
    client = client_or_default(client)
    version_id = None if dataset is None else lookup(dataset, client=client, with_profile=False).id
    body = result.to_dict()
    return client.store.add_validation_result(
        version_id=version_id,
        run_id=run_id_of(run),
        suite=str(body.get("suite") or "suite"),
        success=bool(result.success),
        body=body,
        actor=client.settings.actor,
    )


# -- diff ---------------------------------------------------------------------------------------

#: Profile statistics compared between versions, in the order shown.
DIFF_STATS = ("count", "nulls", "distinct", "min", "max", "mean", "std")


@dataclass(frozen=True)
class DatasetDiff:
    """What changed from version ``a`` to version ``b``: schema, rows, statistics, files."""

    a: str
    b: str
    kind: DatasetKind
    rows: tuple[int | None, int | None]
    added_columns: list[str] = field(default_factory=list)
    removed_columns: list[str] = field(default_factory=list)
    type_changes: list[tuple[str, str, str]] = field(default_factory=list)
    stat_changes: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    added_files: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    modified_files: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything differs."""
        return bool(
            self.rows[0] != self.rows[1]
            or self.added_columns
            or self.removed_columns
            or self.type_changes
            or self.stat_changes
            or self.added_files
            or self.removed_files
            or self.modified_files
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "a": self.a,
            "b": self.b,
            "kind": self.kind.value,
            "changed": self.changed,
            "rows": {"a": self.rows[0], "b": self.rows[1]},
            "columns": {
                "added": self.added_columns,
                "removed": self.removed_columns,
                "type_changed": [{"column": c, "a": x, "b": y} for c, x, y in self.type_changes],
            },
            "statistics": [
                {"column": c, "statistic": st, "a": x, "b": y} for c, st, x, y in self.stat_changes
            ],
            "files": {
                "added": self.added_files,
                "removed": self.removed_files,
                "modified": self.modified_files,
            },
        }

    def render(self, console: Console | None = None) -> None:
        """Print the differences as tables on a terminal."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        console.print(f"[bold]{self.a}[/] → [bold]{self.b}[/]  ({self.kind.value})")
        if not self.changed:
            console.print("no differences")
            return
        if self.rows[0] != self.rows[1]:
            console.print(f"rows: {self.rows[0]} → {self.rows[1]}")
        if self.added_columns or self.removed_columns or self.type_changes:
            table = Table(title="schema", title_justify="left")
            for name in ("column", "change", "a", "b"):
                table.add_column(name)
            for column in self.added_columns:
                table.add_row(column, "added", "", "")
            for column in self.removed_columns:
                table.add_row(column, "removed", "", "")
            for column, x, y in self.type_changes:
                table.add_row(column, "type", x, y)
            console.print(table)
        if self.stat_changes:
            table = Table(title="statistics", title_justify="left")
            for name in ("column", "statistic", "a", "b"):
                table.add_column(name)
            for column, stat, x, y in self.stat_changes:
                table.add_row(column, stat, _shown(x), _shown(y))
            console.print(table)
        for what, paths in (
            ("added", self.added_files),
            ("removed", self.removed_files),
            ("modified", self.modified_files),
        ):
            if paths:
                more = f" … and {len(paths) - 20} more" if len(paths) > 20 else ""
                console.print(f"{what} files ({len(paths)}): " + ", ".join(paths[:20]) + more)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _stat_changes(a: DatasetProfile, b: DatasetProfile) -> list[tuple[str, str, Any, Any]]:
    """The profile statistics (DIFF_STATS) that differ, per column both versions have."""
    changes: list[tuple[str, str, Any, Any]] = []
    for name, col_a in a.columns.items():
        col_b = b.columns.get(name)
        if col_b is None:
            continue
        for stat in DIFF_STATS:
            x, y = getattr(col_a, stat), getattr(col_b, stat)
            if x != y:
                changes.append((name, stat, x, y))
    return changes


def diff(
    a: str | DatasetVersion, b: str | DatasetVersion, *, client: TrackingClient | None = None
) -> DatasetDiff:
    """Compare two versions: schema and statistics for tables, files for folders."""
    client = client_or_default(client)
    va, vb = lookup(a, client=client), lookup(b, client=client)
    if va.kind != vb.kind:
        raise InvalidInput(f"{va.ref} is a {va.kind.value} version and {vb.ref} a {vb.kind.value}")
    if va.kind == DatasetKind.FILES:
        from mloop.data import manifest as mf

        ma = mf.Manifest.from_bytes(client.artifacts.get_bytes(va.storage_digest))
        mb = mf.Manifest.from_bytes(client.artifacts.get_bytes(vb.storage_digest))
        changes = ma.diff(mb)
        return DatasetDiff(
            va.ref,
            vb.ref,
            va.kind,
            (va.num_files, vb.num_files),
            added_files=list(changes.added),
            removed_files=list(changes.removed),
            modified_files=list(changes.modified),
        )
    from mloop.data.profile import DatasetProfile

    types_a = {c["name"]: c["type"] for c in va.schema or []}
    types_b = {c["name"]: c["type"] for c in vb.schema or []}
    stats: list[tuple[str, str, Any, Any]] = []
    if va.profile is not None and vb.profile is not None:
        stats = _stat_changes(
            DatasetProfile.from_dict(va.profile), DatasetProfile.from_dict(vb.profile)
        )
    return DatasetDiff(
        va.ref,
        vb.ref,
        va.kind,
        (va.num_rows, vb.num_rows),
        added_columns=[c for c in types_b if c not in types_a],
        removed_columns=[c for c in types_a if c not in types_b],
        type_changes=[
            (c, types_a[c], types_b[c])
            for c in types_a
            if c in types_b and types_a[c] != types_b[c]
        ],
        stat_changes=stats,
    )
