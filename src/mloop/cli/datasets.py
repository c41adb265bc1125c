"""``mloop data add|list|show|diff|get``: dataset versions, over :mod:`mloop.data.versions`.

The commands (``COMMANDS``) join the ``data`` group of :mod:`mloop.cli.data`; they call the
same functions a Python user calls, through the session's client.
"""

from __future__ import annotations

import click
from rich.panel import Panel
from rich.table import Table

from mloop.cli.data import DATA_FILE, format_option
from mloop.cli.render import emit_json, format_bytes, format_time, out, short_id, spinner
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.errors import InvalidInput
from mloop.store.base import DatasetKind, DatasetVersion

__all__ = ["COMMANDS", "add", "diff", "get", "list_", "show"]


def _parse_tags(pairs: tuple[str, ...]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--tag {pair!r} is not KEY=VALUE (e.g. --tag source=etl)")
        tags[key] = value
    return tags


def _size(version: DatasetVersion) -> str:
    if version.kind == DatasetKind.TABLE:
        return f"{version.num_rows:,} rows"
    return f"{version.num_files:,} files"


def _version_json(version: DatasetVersion) -> dict[str, object]:
    body: dict[str, object] = {
        "ref": version.ref,
        "dataset": version.dataset,
        "version": version.version,
        "digest": version.digest,
        "kind": version.kind.value,
        "rows": version.num_rows,
        "files": version.num_files,
        "size": version.size,
        "run_id": version.run_id,
        "parents": list(version.parents),
        "tags": version.tags,
        "description": version.description,
        "created_at": version.created_at,
        "created_by": version.created_by,
        "schema": version.schema,
    }
    return body


@click.command("add")
@click.argument("name")
@click.argument("path", type=DATA_FILE)
@format_option
@click.option(
    "--table",
    "as_table",
    is_flag=True,
    help="Read a folder as one table (Parquet/CSV/JSON parts), not as a set of files.",
)
@click.option("--description", default="", help="What this version is.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag (repeatable).")
@click.option(
    "--parent",
    "parents",
    multiple=True,
    metavar="NAME@vN",
    help="A version this one was made from (repeatable); recorded as lineage.",
)
@click.option("--run", "run_id", default=None, help="The run that produced this data.")
@json_option
@pass_session
def add(
    session: CliSession,
    *,
    name: str,
    path: str,
    data_format: str | None,
    as_table: bool,
    description: str,
    tags: tuple[str, ...],
    parents: tuple[str, ...],
    run_id: str | None,
    as_json: bool,
) -> None:
    """Register a data file or a folder as a new version of dataset NAME.

    A data file (Parquet, CSV, JSON lines) becomes a table version: stored as Parquet, profiled,
    named by the digest of its rows. A folder becomes a version of its files, hashed in
    parallel; files unchanged since the last add (same path, size, mtime and inode) are not
    hashed again. Adding the same content again returns the existing version.

    \b
    Examples:
      mloop data add transactions data/transactions.parquet --tag source=warehouse
      mloop data add images data/images/
      mloop data add clean clean.parquet --parent transactions@v3 --run 3f2a9c1e
    """
    from mloop.data import versions

    client = session.client
    run = client.resolve_run_id(run_id) if run_id else None
    known = {v.id for v in _versions_or_empty(session, name)}
    with spinner(f"adding {path}", enabled=not as_json):
        version = versions.register(
            name,
            path,
            kind=DatasetKind.TABLE if as_table else None,
            format=data_format,
            description=description,
            tags=_parse_tags(tags),
            parents=parents,
            run=run,
            client=client,
        )
    created = version.id not in known
    if as_json:
        emit_json({**_version_json(version), "created": created})
        return
    what = "added" if created else "unchanged, already"
    out().print(
        f"{what} {version.ref}: {_size(version)}, {format_bytes(version.size)}, "
        f"digest {version.digest[:12]}"
    )


def _versions_or_empty(session: CliSession, name: str) -> list[DatasetVersion]:
    from mloop.errors import NotFound

    try:
        return session.client.store.list_dataset_versions(name)
    except NotFound:
        return []


@click.command("list")
@click.argument("name", required=False)
@json_option
@pass_session
def list_(session: CliSession, name: str | None, as_json: bool) -> None:
    """List datasets, or the versions of dataset NAME.

    \b
    Examples:
      mloop data list
      mloop data list transactions --json
    """
    store = session.client.store
    if name is None:
        datasets = store.list_datasets()
        if as_json:
            emit_json(
                [
                    {"name": d.name, "versions": d.versions, "latest": d.latest,
                     "updated_at": d.updated_at}
                    for d in datasets
                ]
            )  # fmt: skip
            return
        table = Table(title="Datasets", title_justify="left")
        for column in ("name", "versions", "latest", "updated"):
            table.add_column(column)
        for d in datasets:
            table.add_row(d.name, str(d.versions), f"v{d.latest}", format_time(d.updated_at))
        out().print(table)
        return
    found = store.list_dataset_versions(name)
    if as_json:
        emit_json([_version_json(v) for v in found])
        return
    table = Table(title=f"Versions of {name}", title_justify="left")
    for column in ("version", "kind", "size", "bytes", "digest", "run", "created", "tags"):
        table.add_column(column)
    for v in found:
        table.add_row(
            f"v{v.version}",
            v.kind.value,
            _size(v),
            format_bytes(v.size),
            v.digest[:12],
            short_id(v.run_id) or "-",
            format_time(v.created_at),
            ", ".join(f"{k}={x}" for k, x in sorted(v.tags.items())),
        )
    out().print(table)


@click.command("show")
@click.argument("ref", metavar="NAME[@vN]")
@json_option
@pass_session
def show(session: CliSession, ref: str, as_json: bool) -> None:
    """Show a dataset version: schema, profile summary, lineage, runs that read it.

    \b
    Examples:
      mloop data show transactions          # the newest version
      mloop data show transactions@v2 --json
    """
    from mloop.data import versions

    client = session.client
    version = versions.lookup(ref, client=client)
    consumers = client.store.list_version_consumers(version.id)
    validations = client.store.list_validation_results(version_id=version.id)
    if as_json:
        emit_json(
            {
                **_version_json(version),
                "profile": version.profile,
                "consumers": [{"run_id": r, "context": c} for r, c in consumers],
                "validations": [
                    {"id": v.id, "suite": v.suite, "success": v.success, "run_id": v.run_id,
                     "created_at": v.created_at}
                    for v in validations
                ],
            }
        )  # fmt: skip
        return
    console = out()
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column(overflow="fold")
    header.add_row("digest", version.digest)
    header.add_row("kind", version.kind.value)
    header.add_row("size", f"{_size(version)}, {format_bytes(version.size)}")
    header.add_row("created", f"{format_time(version.created_at)} by {version.created_by}")
    if version.description:
        header.add_row("description", version.description)
    if version.run_id:
        header.add_row("produced by run", version.run_id)
    if version.parents:
        header.add_row("made from", ", ".join(version.parents))
    if version.tags:
        header.add_row("tags", ", ".join(f"{k}={x}" for k, x in sorted(version.tags.items())))
    if consumers:
        header.add_row("read by", ", ".join(f"{short_id(r)} ({c})" for r, c in consumers[:10]))
    if validations:
        last = validations[-1]
        verdict = "passed" if last.success else "FAILED"
        header.add_row("last validation", f"suite {last.suite}: {verdict}")
    console.print(Panel(header, title=version.ref, title_align="left"))
    if version.schema:
        columns = {}
        if version.profile is not None:
            columns = {c["name"]: c for c in version.profile.get("columns", [])}
        table = Table(title="Schema", title_justify="left")
        for column in ("column", "type", "nulls", "distinct", "min", "mean", "max"):
            table.add_column(column)
        for field in version.schema:
            stats = columns.get(field["name"], {})
            table.add_row(
                field["name"],
                field["type"],
                _stat(stats.get("nulls")),
                _stat(stats.get("distinct")),
                _stat(stats.get("min")),
                _stat(stats.get("mean")),
                _stat(stats.get("max")),
            )
        console.print(table)


def _stat(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@click.command("diff")
@click.argument("a", metavar="NAME@vA")
@click.argument("b", metavar="NAME@vB")
@json_option
@pass_session
def diff(session: CliSession, a: str, b: str, as_json: bool) -> None:
    """Show what changed between two versions: schema and statistics, or files.

    \b
    Examples:
      mloop data diff transactions@v2 transactions@v3
      mloop data diff images@v1 images@v2 --json
    """
    from mloop.data import versions

    result = versions.diff(a, b, client=session.client)
    if as_json:
        emit_json(result.to_dict())
    else:
        result.render(out())


@click.command("get")
@click.argument("ref", metavar="NAME[@vN]")
@click.argument("dest", type=click.Path(path_type=str), required=False)
@click.option("--overwrite", is_flag=True, help="Replace what is at DEST.")
@json_option
@pass_session
def get(session: CliSession, ref: str, dest: str | None, overwrite: bool, as_json: bool) -> None:
    """Materialise a version at DEST: a table as a Parquet file, files as a folder.

    DEST defaults to NAME.parquet (a table) or ./NAME (files) in the current folder. Every
    byte is verified against its digest before it is put in place.

    \b
    Examples:
      mloop data get transactions@v3 train.parquet
      mloop data get images@v2 ./images
    """
    from mloop.data import versions

    with spinner(f"fetching {ref}", enabled=not as_json):
        version = versions.lookup(ref, client=session.client, with_profile=False)
        if dest is None:
            table = version.kind == DatasetKind.TABLE
            dest = f"{version.dataset}.parquet" if table else version.dataset
        path = versions.get(version, dest, overwrite=overwrite, client=session.client)
    if as_json:
        emit_json({"ref": version.ref, "path": str(path)})
    else:
        out().print(f"wrote {version.ref} to {path}")


#: The dataset-version commands, added to the ``data`` group by :mod:`mloop.cli.main`.
COMMANDS = (add, list_, show, diff, get)
