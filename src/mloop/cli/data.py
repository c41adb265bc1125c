"""``mloop data``: profile a data file, test drift between two, validate one against a suite.

The commands read files with :func:`mloop.data.io.read_table` and call the same
:mod:`mloop.data` functions as a Python user. ``drift`` and ``validate`` exit with
:data:`EXIT_FINDING` (3) when they find drift or failed expectations, so that a CI step fails on
a finding and still tells it apart from an error (1) or a usage error (2).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

if TYPE_CHECKING:
    import pyarrow as pa

    from mloop.data.profile import DatasetProfile

from mloop.cli.render import emit_json, format_value, out, progress
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.errors import InvalidInput, MloopError, NotFound

__all__ = [
    "DATA_FILE",
    "EXIT_FINDING",
    "data",
    "format_option",
    "parse_tests",
    "parse_thresholds",
]

#: Exit code of ``drift`` when the data set drifted and of ``validate`` when an expectation failed.
EXIT_FINDING = 3
TOP_SHOWN = 3

FORMAT_CHOICE = click.Choice(["parquet", "csv", "json"], case_sensitive=False)
DATA_FILE = click.Path(dir_okay=True, file_okay=True, path_type=str)


def format_option(func: Callable[..., None]) -> Callable[..., None]:
    """Add ``--format``: read data files as a named format instead of guessing."""
    return click.option(
        "--format",
        "data_format",
        type=FORMAT_CHOICE,
        default=None,
        help="Read data files as this format instead of guessing from the extension.",
    )(func)


def parse_thresholds(pairs: tuple[str, ...]) -> dict[str, float]:
    """Turn ``COLUMN=VALUE`` strings from ``--threshold`` into a dict of floats."""
    thresholds: dict[str, float] = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        try:
            if not sep or not column:
                raise ValueError
            thresholds[column] = float(value)
        except ValueError:
            raise InvalidInput(
                f"--threshold {pair!r} is not COLUMN=NUMBER (e.g. --threshold amount=0.2)",
                option="--threshold",
            ) from None
    return thresholds


def parse_tests(entries: tuple[str, ...], columns: list[str]) -> dict[str, str] | str | None:
    """Turn ``--test NAME`` (every column) and ``--test COLUMN=NAME`` into drift's ``tests``."""
    every: str | None = None
    per_column: dict[str, str] = {}
    for entry in entries:
        column, sep, name = entry.partition("=")
        if not sep:
            if every is not None and every != entry:
                raise InvalidInput(
                    f"--test given two tests for every column ({every!r}, {entry!r}); give one, "
                    "and COLUMN=NAME for the exceptions",
                    option="--test",
                )
            every = entry
        elif not column or not name:
            raise InvalidInput(
                f"--test {entry!r} is not NAME or COLUMN=NAME (e.g. --test amount=psi)",
                option="--test",
            )
        else:
            per_column[column] = name
    if every is None:
        return per_column or None
    if not per_column:
        return every
    return {**dict.fromkeys(columns, every), **per_column}


def _is_dataset_ref(arg: str) -> bool:
    """True when ``arg`` is no existing path but reads as NAME, NAME@vN or NAME@latest."""
    from mloop.store.datasets import parse_ref

    if Path(arg).exists():
        return False
    try:
        parse_ref(arg)
    except MloopError:
        return False
    return True


def read_data(session: CliSession, arg: str, data_format: str | None) -> pa.Table:
    """A data file, or a dataset version when ``arg`` is no file but a dataset reference."""
    from mloop.data.io import read_table

    if _is_dataset_ref(arg):
        from mloop.data.versions import load

        try:
            return load(arg, client=session.client)
        except NotFound as exc:
            raise NotFound(f"{arg!r} is neither a file nor a dataset version: {exc}") from None
    return read_table(arg, format=data_format)


def _streamed(session: CliSession, arg: str, data_format: str | None) -> tuple[object, list[str]]:
    """What drift reads CURRENT from, and its column names: a Parquet file or folder is passed
    on as a path, read batch by batch in bounded memory; anything else is read whole."""
    from mloop.data.io import format_of

    if not _is_dataset_ref(arg) and format_of(arg, data_format) == "parquet":
        from mloop.data.frames import batch_stream

        return arg, list(batch_stream(arg).schema.names)
    table = read_data(session, arg, data_format)
    return table, list(table.column_names)


def _stored_profile(session: CliSession, ref: str) -> DatasetProfile:
    """The profile stored with a table version (drift then never re-reads the reference)."""
    from mloop.data.profile import DatasetProfile
    from mloop.data.versions import lookup

    version = lookup(ref, client=session.client)
    if version.profile is None:
        raise InvalidInput(f"{version.ref} is a folder of files; it has no table profile")
    return DatasetProfile.from_dict(version.profile)


@click.group()
def data() -> None:
    """Profile data files, test them for drift and validate them against expectations."""


@data.command("profile")
@click.argument("file", type=DATA_FILE)
@format_option
@click.option("--bins", type=int, default=20, show_default=True, help="Histogram bins per column.")
@click.option(
    "--top-k", type=int, default=20, show_default=True, help="Top categories kept per column."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=str),
    metavar="PROFILE.json",
    help="Save the profile as JSON (usable later as a drift reference).",
)
@json_option
@pass_session
def profile_(
    session: CliSession,
    *,
    file: str,
    data_format: str | None,
    bins: int,
    top_k: int,
    output: str | None,
    as_json: bool,
) -> None:
    """Profile every column of a data file (Parquet, CSV or JSON lines).

    \b
    Examples:
      mloop data profile train.parquet
      mloop data profile events.csv --top-k 5 --json
      mloop data profile train.parquet --output train-profile.json
    """
    import mloop.data
    from mloop.data.io import write_profile

    prof = mloop.data.profile(read_data(session, file, data_format), bins=bins, top_k=top_k)
    if output is not None:
        write_profile(prof, output)
    if as_json:
        emit_json(prof.to_dict())
        return
    table = Table(title=f"Profile of {file} ({prof.rows} rows)", title_justify="left")
    for name in ("column", "kind", "count", "nulls", "distinct", "min", "mean", "max"):
        table.add_column(name, justify="left" if name in ("column", "kind") else "right")
    table.add_column("top categories")
    for col in prof.columns.values():
        nulls = col.nulls + col.nan
        top = ", ".join(f"{label} ({n})" for label, n in col.top[:TOP_SHOWN])
        if len(col.top) > TOP_SHOWN or col.other_count:
            top += ", …"
        table.add_row(
            col.name,
            col.kind,
            str(col.count),
            str(nulls),
            str(col.distinct) if col.distinct_exact else f"~{col.distinct}",
            format_value(col.min),
            format_value(col.mean),
            format_value(col.max),
            top,
        )
    console = out()
    console.print(table)
    if output is not None:
        console.print(f"saved profile to {output}")


@data.command("drift")
@click.argument("reference", type=DATA_FILE)
@click.argument("current", type=DATA_FILE)
@click.option(
    "--reference-profile",
    is_flag=True,
    help="REFERENCE is a profile saved with 'mloop data profile --output', not a data file.",
)
@format_option
@click.option(
    "--test",
    "tests",
    multiple=True,
    metavar="NAME|COLUMN=NAME",
    help="Drift test for every column, or for one column (repeatable); default: chosen per column.",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="Override a column's drift threshold (repeatable).",
)
@click.option(
    "--drift-share",
    type=float,
    default=0.5,
    show_default=True,
    help="Share of drifted columns at which the data set counts as drifted.",
)
@click.option("--bins", type=int, default=20, show_default=True, help="Bins of binned tests.")
@click.option(
    "--html",
    type=click.Path(dir_okay=False, path_type=str),
    metavar="REPORT.html",
    help="Also write a self-contained HTML report (aggregates only).",
)
@json_option
@click.pass_context
def drift_(
    ctx: click.Context,
    *,
    reference: str,
    current: str,
    reference_profile: bool,
    data_format: str | None,
    tests: tuple[str, ...],
    thresholds: tuple[str, ...],
    drift_share: float,
    bins: int,
    html: str | None,
    as_json: bool,
) -> None:
    """Test each column of CURRENT for drift from REFERENCE; exit 3 if the data set drifted.

    \b
    Exit codes: 0 no data-set drift, 3 drift detected, 1 error.
    Examples:
      mloop data drift train.parquet today.parquet
      mloop data drift train.csv today.csv --test psi --threshold amount=0.2
      mloop data drift train-profile.json today.parquet --reference-profile --html drift.html
    """
    import mloop.data
    from mloop.data.io import read_profile

    session = ctx.find_object(CliSession) or CliSession()
    per_threshold = parse_thresholds(thresholds)
    ref: object
    if reference_profile:
        ref = read_profile(reference)
        ref_names = list(ref.columns)
    elif _is_dataset_ref(reference):
        ref = _stored_profile(session, reference)
        ref_names = list(ref.columns)
    else:
        ref_table = read_data(session, reference, data_format)
        ref, ref_names = ref_table, list(ref_table.column_names)
    cur, cur_names = _streamed(session, current, data_format)
    names = ref_names + [n for n in cur_names if n not in set(ref_names)]
    per_test = parse_tests(tests, names)
    with progress(enabled=not as_json and sys.stderr.isatty()) as bar:
        task = bar.add_task("drift", total=len(names))

        def advance(done: int, total: int, column: str) -> None:
            bar.update(task, completed=done, total=total, description=column)

        report = mloop.data.drift(
            ref,
            cur,
            tests=per_test,
            thresholds=per_threshold,
            drift_share=drift_share,
            bins=bins,
            progress=advance,
        )
    if html is not None:
        report.save_html(html)
    if as_json:
        emit_json(report.to_dict())
    else:
        console = out()
        report.render(console)
        if html is not None:
            console.print(f"wrote HTML report to {html}")
    if report.drifted:
        ctx.exit(EXIT_FINDING)


@data.command("validate")
@click.argument("file", type=DATA_FILE)
@click.option(
    "--suite",
    "suite_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    metavar="SUITE.yaml",
    help="The expectation suite (YAML) to check.",
)
@format_option
@click.option(
    "--sample-size",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Failing rows shown per expectation.",
)
@click.option(
    "--run",
    "run_id",
    default=None,
    help="Store the result with this run (a dataset version FILE stores it there too).",
)
@json_option
@click.pass_context
def validate_(
    ctx: click.Context,
    *,
    file: str,
    suite_path: str,
    data_format: str | None,
    sample_size: int,
    run_id: str | None,
    as_json: bool,
) -> None:
    """Check a data file against an expectation suite; exit 3 if any expectation fails.

    \b
    Exit codes: 0 every expectation passed, 3 one or more failed, 1 error.
    Examples:
      mloop data validate today.parquet --suite expectations.yaml
      mloop data validate today.csv --suite expectations.yaml --json
    """
    import mloop.data

    session = ctx.find_object(CliSession) or CliSession()
    suite = mloop.data.Suite.load(suite_path)
    version = None
    if _is_dataset_ref(file):
        from mloop.data.versions import lookup

        version = lookup(file, client=session.client, with_profile=False)
    table = read_data(session, version.ref if version else file, data_format)
    result = mloop.data.validate(table, suite, sample_size=sample_size)
    if version is not None or run_id is not None:
        from mloop.data.versions import record_validation

        client = session.client
        run = client.resolve_run_id(run_id) if run_id else None
        record_validation(result, dataset=version, run=run, client=client)
    if as_json:
        emit_json(result.to_dict())
    else:
        result.render(out())
    if not result.success:
        ctx.exit(EXIT_FINDING)


@data.command("suggest")
@click.argument("file", type=DATA_FILE)
@format_option
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=str),
    metavar="SUITE.yaml",
    help="Write the suite to this file instead of printing it.",
)
@click.option("--name", default="suggested", show_default=True, help="The suite's name.")
@json_option
@pass_session
def suggest(
    session: CliSession,
    *,
    file: str,
    data_format: str | None,
    output: str | None,
    name: str,
    as_json: bool,
) -> None:
    """Draft an expectation suite (YAML) that the given data file passes.

    \b
    Examples:
      mloop data suggest train.parquet --output expectations.yaml --name transactions
      mloop data suggest train.csv > expectations.yaml
    """
    import mloop.data

    suite = mloop.data.suggest_expectations(read_data(session, file, data_format), name=name)
    if output is not None:
        suite.save(output)
    if as_json:
        emit_json(suite.to_dict())
    elif output is not None:
        out().print(
            f"wrote suite {suite.name!r} ({len(suite.expectations)} expectations) to {output}"
        )
    else:
        click.echo(suite.to_yaml(), nl=False)
