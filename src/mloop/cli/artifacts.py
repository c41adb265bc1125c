"""``mloop artifacts``: list a run's artifacts and download them, verified."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from mloop.cli.render import emit_json, format_bytes, format_time, out, progress
from mloop.cli.session import CliSession, json_option, pass_session

__all__ = ["artifacts"]


@click.group()
def artifacts() -> None:
    """List and download run artifacts (stored once, by content digest)."""


@artifacts.command("ls")
@click.argument("run_id")
@click.argument("prefix", required=False, default="")
@json_option
@pass_session
def ls(session: CliSession, run_id: str, prefix: str, as_json: bool) -> None:
    """List a run's artifacts, optionally only those under PREFIX.

    \b
    Examples:
      mloop artifacts ls 3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8
      mloop artifacts ls 3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8 reports/ --json
    """
    run_id = session.client.resolve_run_id(run_id)
    entries = session.client.list_artifacts(run_id, prefix=prefix)
    if as_json:
        emit_json({"run_id": run_id, "artifacts": entries})
        return
    if not entries:
        out().print(f"no artifacts{f' under {prefix!r}' if prefix else ''} for run {run_id}")
        return
    table = Table(title=f"Artifacts of run {run_id}", title_justify="left")
    table.add_column("path", overflow="fold", style="bold")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("digest (sha256)", no_wrap=True)
    table.add_column("logged", no_wrap=True)
    for entry in entries:
        table.add_row(
            entry.path, format_bytes(entry.size), entry.digest[:16], format_time(entry.created_at)
        )
    out().print(table)
    total = sum(e.size for e in entries)
    out().print(f"{len(entries)} file(s), {format_bytes(total)}")


@artifacts.command()
@click.argument("run_id")
@click.argument("path", required=False, default="")
@click.option(
    "--dest",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to download into (created if missing).",
)
@json_option
@pass_session
def get(session: CliSession, run_id: str, path: str, dest: Path, as_json: bool) -> None:
    """Download a run's artifact (a file or a folder PATH; everything if omitted), verified.

    Each file's bytes are checked against its digest before it is written in place.

    \b
    Examples:
      mloop artifacts get 3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8 confusion_matrix.json --dest out/
      mloop artifacts get 3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8 --dest out/
    """
    client = session.client
    run_id = client.resolve_run_id(run_id)
    wanted = path.rstrip("/")
    entries = [
        e
        for e in client.list_artifacts(run_id, prefix=wanted)
        if not wanted or e.path == wanted or e.path.startswith(wanted + "/")
    ]
    if not entries:
        # Nothing matches: let the API raise its NotFound (or InvalidArtifactPath) message.
        client.download_artifacts(run_id, path, dest)
    total = sum(e.size for e in entries)
    with progress(enabled=not as_json) as bar:
        task = bar.add_task("downloading", total=max(total, 1))
        for entry in entries:
            bar.update(task, description=f"downloading {entry.path}")
            # One verified download per file, each landing at dest/<its path>.
            client.download_artifacts(run_id, entry.path, dest)
            bar.update(task, advance=entry.size)
        bar.update(task, completed=max(total, 1), description="downloaded")
    written = dest / wanted if wanted else dest
    if as_json:
        emit_json(
            {
                "run_id": run_id,
                "path": path,
                "dest": str(written),
                "files": [
                    {"path": e.path, "digest": e.digest, "size": e.size, "to": str(dest / e.path)}
                    for e in entries
                ],
            }
        )
        return
    out().print(
        f"downloaded {len(entries)} file(s), {format_bytes(total)}, verified, to {written}",
        soft_wrap=True,
    )
