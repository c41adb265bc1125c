"""``mloop doctor``: check the installation, the stores and the audit log, and say what to do."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import click
from rich.text import Text

from mloop.cli.render import emit_json, out, short_id
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.errors import MloopError

__all__ = ["EXTRAS", "Check", "doctor"]

#: extra name -> (module it installs, what needs it, URI prefix that makes it essential)
EXTRAS: dict[str, tuple[str, str, str]] = {
    "postgres": ("psycopg", "a PostgreSQL metadata store", "postgresql"),
    "s3": ("s3fs", "an S3 artifact store", "s3://"),
    "ray": ("ray", "running pipelines on Ray", "ray://"),
}


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    essential: bool = True


def _check_settings(session: CliSession) -> Check:
    settings = session.settings
    return Check(
        "settings",
        True,
        f"config file {settings.config_file}"
        f"{'' if _exists(settings.config_file) else ' (not present, defaults used)'}; "
        f"home {settings.home}",
    )


def _exists(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_file()


def _check_metadata(session: CliSession) -> Check:
    from mloop.store import migrate, open_store

    settings = session.settings
    store = open_store(settings.tracking_uri, settings=settings, migrate=False)
    try:
        revision = store.schema_revision()
        wal = _sqlite_journal_mode(store)
    finally:
        store.close()
    head = migrate.head_revision()
    if revision != head:
        return Check(
            "metadata store",
            False,
            f"{settings.tracking_uri} is at revision {revision or '(empty)'}, this mloop needs "
            f"{head}",
            "run: mloop db upgrade",
        )
    if wal is not None and wal != "wal":
        return Check(
            "metadata store",
            False,
            f"SQLite journal mode is {wal!r}, not 'wal'; concurrent writers will block",
            "check that the database folder is on a local disk that supports WAL",
        )
    extra = ", SQLite WAL on" if wal == "wal" else ""
    return Check("metadata store", True, f"{settings.tracking_uri} at head {head}{extra}")


def _sqlite_journal_mode(store: object) -> str | None:
    engine = getattr(store, "engine", None)
    if engine is None or engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    return str(mode).lower()


def _check_artifacts(session: CliSession) -> Check:
    cas = session.client.artifacts
    # A unique payload, so the probe can never be a blob a run references.
    payload = f"mloop doctor probe {uuid.uuid4().hex}".encode()
    ref = cas.put_bytes(payload)
    try:
        intact = cas.verify(ref.digest) and cas.get_bytes(ref.digest) == payload
    finally:
        cas.delete([ref.digest])
    if not intact:
        return Check(
            "artifact store",
            False,
            f"{session.settings.artifact_uri}: a probe blob read back different bytes",
            "check the storage behind the artifact URI (disk, bucket) for faults",
        )
    return Check(
        "artifact store",
        True,
        f"{session.settings.artifact_uri} writable (a probe blob was put, verified and deleted)",
    )


def _check_extras(session: CliSession) -> list[Check]:
    settings = session.settings
    checks = []
    for extra, (module, purpose, prefix) in EXTRAS.items():
        installed = importlib.util.find_spec(module) is not None
        needed = settings.tracking_uri.startswith(prefix) or settings.artifact_uri.startswith(
            prefix
        )
        checks.append(
            Check(
                f"extra [{extra}]",
                installed,
                f"{module} installed"
                if installed
                else f"{module} not installed; needed for {purpose}",
                "" if installed else f"pip install 'mloop[{extra}]'",
                essential=needed,
            )
        )
    return checks


def _check_stale_runs(session: CliSession) -> Check:
    # Before the client opens: opening a client reaps too, and the doctor reports what it did.
    from mloop.store import open_store
    from mloop.tracking import reap_stale_runs

    settings = session.settings
    store = open_store(settings.tracking_uri, settings=settings, migrate=False)
    try:
        reaped = reap_stale_runs(store, settings)
    finally:
        store.close()
    if not reaped:
        return Check("stale runs", True, "no RUNNING run has lost its process")
    shown = ", ".join(short_id(r) for r in reaped[:5]) + (" …" if len(reaped) > 5 else "")
    return Check(
        "stale runs", True, f"marked {len(reaped)} run(s) KILLED whose process is gone: {shown}"
    )


def _check_audit(session: CliSession) -> Check:
    report = session.client.verify_audit()
    if report.ok:
        return Check("audit log", True, f"chain verifies ({report.events_checked} events)")
    first_seq, first_reason = report.problems[0]
    return Check(
        "audit log",
        False,
        f"{len(report.problems)} problem(s), first at seq {first_seq}: {first_reason}",
        "run: mloop audit verify (lists every problem); restore the database from a backup",
    )


def _run(name: str, check: Callable[[], Check], fix: str) -> Check:
    try:
        return check()
    except MloopError as exc:
        return Check(name, False, exc.message, fix)
    except Exception as exc:  # a doctor reports, it does not crash
        return Check(name, False, f"unexpected {type(exc).__name__}: {exc}", fix)


@click.command()
@json_option
@pass_session
def doctor(session: CliSession, as_json: bool) -> None:
    """Check settings, stores, extras, stale runs and the audit log; exit 1 if one is broken.

    \b
    Example:
      mloop doctor
      mloop --tracking-uri postgresql+psycopg://mloop@db/mloop doctor --json
    """
    checks = [
        _run(
            "settings",
            lambda: _check_settings(session),
            "fix the value named above in the environment (MLOOP_*) or the config file",
        )
    ]
    if checks[0].ok:
        checks.append(
            _run(
                "metadata store",
                lambda: _check_metadata(session),
                "check the tracking URI (mloop config), that the database is reachable, "
                "then run: mloop db upgrade",
            )
        )
        checks.extend(_check_extras(session))
        if checks[1].ok:
            checks.append(
                _run("stale runs", lambda: _check_stale_runs(session), "see the message above")
            )
            checks.append(
                _run(
                    "artifact store",
                    lambda: _check_artifacts(session),
                    "check the artifact URI (mloop config) and that it is writable",
                )
            )
            checks.append(
                _run("audit log", lambda: _check_audit(session), "run: mloop audit verify")
            )
    healthy = all(c.ok for c in checks if c.essential)
    if as_json:
        emit_json({"ok": healthy, "checks": checks})
    else:
        console = out()
        for check in checks:
            mark = (
                ("✓", "green")
                if check.ok
                else (("✗", "red") if check.essential else ("!", "yellow"))
            )
            line = Text()
            line.append(f"{mark[0]} ", style=mark[1])
            line.append(f"{check.name}: ", style="bold")
            line.append(check.detail)
            console.print(line)
            if check.fix:
                console.print(Text(f"    → {check.fix}", style="dim"))
        console.print(
            Text("all essential checks pass", style="green")
            if healthy
            else Text("some essential checks fail (✗); see the → lines", style="red")
        )
    if not healthy:
        raise click.exceptions.Exit(1)
