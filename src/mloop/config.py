"""Settings: every knob mloop has, its environment variable, its default and what it does.

A value is taken from, in order: an explicit argument to :func:`load_settings`, the environment
(``MLOOP_*``), the config file (TOML, ``$MLOOP_HOME/config.toml`` unless ``MLOOP_CONFIG`` names
another), and finally the default. ``SETTINGS`` is the documented table; ``docs/configuration.md``
and ``mloop doctor`` are generated from it.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mloop.errors import ConfigError

__all__ = ["SETTINGS", "Setting", "Settings", "load_settings", "resolve_settings"]


@dataclass(frozen=True)
class Setting:
    """One documented setting: its field name, environment variable, type, default and meaning."""

    name: str
    env: str
    kind: type
    default: Any
    help: str
    minimum: float | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "home",
        "MLOOP_HOME",
        str,
        "./.mloop",
        "Folder for the embedded default: the SQLite database and the artifact folder.",
    ),
    Setting(
        "tracking_uri",
        "MLOOP_TRACKING_URI",
        str,
        "",
        "Metadata store URI: sqlite:///path.db or postgresql+psycopg://user:pw@host/db. "
        "Empty means sqlite:///$MLOOP_HOME/mloop.db.",
    ),
    Setting(
        "artifact_uri",
        "MLOOP_ARTIFACT_URI",
        str,
        "",
        "Artifact store: a local folder or any fsspec URI (s3://bucket/prefix). "
        "Empty means $MLOOP_HOME/artifacts.",
    ),
    Setting(
        "config_file",
        "MLOOP_CONFIG",
        str,
        "",
        "TOML config file whose keys are the names in this table. "
        "Empty means $MLOOP_HOME/config.toml (read only if it exists).",
    ),
    Setting(
        "actor",
        "MLOOP_ACTOR",
        str,
        "",
        "Who is recorded in the audit log and as a run's user. Empty means the OS user.",
    ),
    Setting(
        "default_experiment",
        "MLOOP_EXPERIMENT",
        str,
        "Default",
        "Experiment used when a run names none.",
    ),
    Setting(
        "heartbeat_interval",
        "MLOOP_HEARTBEAT_INTERVAL",
        float,
        15.0,
        "Seconds between heartbeats of a running run.",
        minimum=0.05,
    ),
    Setting(
        "stale_run_after",
        "MLOOP_STALE_RUN_AFTER",
        float,
        300.0,
        "A RUNNING run whose heartbeat is older than this many seconds is marked KILLED "
        "(a run whose process is gone on this host is marked at once).",
        minimum=1.0,
    ),
    Setting(
        "writer_batch_size",
        "MLOOP_WRITER_BATCH_SIZE",
        int,
        10_000,
        "Most points the background writer puts in one transaction.",
        minimum=1,
    ),
    Setting(
        "writer_queue_size",
        "MLOOP_WRITER_QUEUE_SIZE",
        int,
        200_000,
        "Most points waiting in memory; logging blocks (back-pressure) beyond it.",
        minimum=1,
    ),
    Setting(
        "writer_flush_interval",
        "MLOOP_WRITER_FLUSH_INTERVAL",
        float,
        0.5,
        "Longest a logged point waits in memory before the writer stores it (seconds).",
        minimum=0.001,
    ),
    Setting(
        "sqlite_busy_timeout",
        "MLOOP_SQLITE_BUSY_TIMEOUT",
        float,
        60.0,
        "Seconds a SQLite writer waits for another writer's lock before failing.",
        minimum=0.0,
    ),
    Setting(
        "gc_grace",
        "MLOOP_GC_GRACE",
        float,
        3600.0,
        "mloop gc never deletes a blob younger than this many seconds (an upload in flight "
        "is not yet referenced).",
        minimum=0.0,
    ),
    Setting(
        "alert_hosts",
        "MLOOP_ALERT_HOSTS",
        str,
        "",
        "Comma-separated hosts (host or host:port; *.example.com for subdomains) that policy "
        "webhook alerts may be sent to. Empty means no webhook is allowed.",
    ),
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings; build with :func:`load_settings`."""

    home: str
    tracking_uri: str
    artifact_uri: str
    config_file: str
    actor: str
    default_experiment: str
    heartbeat_interval: float
    stale_run_after: float
    writer_batch_size: int
    writer_queue_size: int
    writer_flush_interval: float
    sqlite_busy_timeout: float
    gc_grace: float
    alert_hosts: str = ""

    @property
    def home_path(self) -> Path:
        """``home`` as an absolute path."""
        return Path(self.home).expanduser().resolve()


_BY_NAME = {s.name: s for s in SETTINGS}
assert set(_BY_NAME) == {f.name for f in fields(Settings)}


def _coerce(setting: Setting, raw: object, origin: str) -> Any:
    converters: dict[type, Callable[[Any], Any]] = {str: str, int: int, float: float}
    if isinstance(raw, bool) or (setting.kind is str and not isinstance(raw, str | Path)):
        raise ConfigError(
            f"{origin}: {setting.name} must be a {setting.kind.__name__}, got {raw!r}"
        )
    try:
        value = converters[setting.kind](raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{origin}: {setting.name} must be a {setting.kind.__name__}, got {raw!r}; "
            f"{setting.help}"
        ) from None
    if setting.minimum is not None and value < setting.minimum:
        raise ConfigError(f"{origin}: {setting.name} must be >= {setting.minimum}, got {value}")
    return value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    table = data.get("mloop", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [mloop] must be a table")
    unknown = sorted(set(table) - set(_BY_NAME) - {"config_file"})
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_BY_NAME))}"
        )
    return table


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve every setting from overrides, the environment, the config file and defaults."""
    return resolve_settings(overrides, environ)[0]


def resolve_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, str]]:
    """Like :func:`load_settings`, plus where each value came from ("override",
    "environment (MLOOP_…)", "config file", "default", or what an empty default became)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    env = os.environ if environ is None else environ
    unknown = sorted(set(overrides) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}")

    def early(name: str) -> str:
        setting = _BY_NAME[name]
        if name in overrides:
            return str(overrides[name])
        return env.get(setting.env) or str(setting.default)

    home = early("home")
    config_file = early("config_file")
    explicit_file = bool(config_file)
    path = Path(config_file) if config_file else Path(home).expanduser() / "config.toml"
    if explicit_file and not path.is_file():
        raise ConfigError(f"config file {path} (from MLOOP_CONFIG) does not exist")
    from_file = _read_file(path) if path.is_file() else {}

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.name in overrides:
            raw, origin, source = overrides[setting.name], "argument", "override"
        elif env.get(setting.env, "") != "":
            raw = env[setting.env]
            origin = f"environment variable {setting.env}"
            source = f"environment ({setting.env})"
        elif setting.name in from_file:
            raw, origin, source = from_file[setting.name], f"config file {path}", "config file"
        else:
            raw, origin, source = setting.default, "default", "default"
        values[setting.name] = _coerce(setting, raw, origin)
        sources[setting.name] = source

    home_path = Path(values["home"]).expanduser()
    if not values["tracking_uri"]:
        values["tracking_uri"] = f"sqlite:///{(home_path / 'mloop.db').as_posix()}"
        sources["tracking_uri"] = "derived from home"
    if not values["artifact_uri"]:
        values["artifact_uri"] = (home_path / "artifacts").as_posix()
        sources["artifact_uri"] = "derived from home"
    if not values["actor"]:
        try:
            values["actor"] = getpass.getuser()
        except (KeyError, OSError):
            values["actor"] = "unknown"
        sources["actor"] = "the OS user"
    if sources["config_file"] == "default":
        sources["config_file"] = "derived from home"
    values["config_file"] = str(path)
    return Settings(**values), sources
