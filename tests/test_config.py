"""Settings: precedence, coercion, the config file, and where each value came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.config import SETTINGS, load_settings, resolve_settings
from mloop.errors import ConfigError


def test_defaults_live_under_home(tmp_path: Path) -> None:
    settings, sources = resolve_settings(environ={"MLOOP_HOME": str(tmp_path)})
    assert settings.tracking_uri == f"sqlite:///{(tmp_path / 'mloop.db').as_posix()}"
    assert settings.artifact_uri == (tmp_path / "artifacts").as_posix()
    assert settings.config_file == str(tmp_path / "config.toml")
    assert settings.writer_batch_size == 10_000
    assert sources["tracking_uri"] == "derived from home"
    assert sources["writer_batch_size"] == "default"
    assert sources["home"] == "environment (MLOOP_HOME)"


def test_precedence_override_then_env_then_file_then_default(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        "[mloop]\ngc_grace = 10\nwriter_batch_size = 7\nactor = 'file-actor'\n"
    )
    env = {"MLOOP_HOME": str(tmp_path), "MLOOP_GC_GRACE": "20", "MLOOP_ACTOR": ""}
    settings, sources = resolve_settings({"gc_grace": 30.0}, environ=env)
    assert settings.gc_grace == 30.0 and sources["gc_grace"] == "override"
    settings, sources = resolve_settings(environ=env)
    assert settings.gc_grace == 20.0 and sources["gc_grace"] == "environment (MLOOP_GC_GRACE)"
    assert settings.writer_batch_size == 7 and sources["writer_batch_size"] == "config file"
    # An empty environment variable counts as unset.
    assert settings.actor == "file-actor" and sources["actor"] == "config file"


def test_config_file_without_table_header(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("default_experiment = 'flat'\n")
    assert load_settings(environ={"MLOOP_HOME": str(tmp_path)}).default_experiment == "flat"


def test_explicit_config_file(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("[mloop]\nstale_run_after = 60\n")
    env = {"MLOOP_HOME": str(tmp_path / "home"), "MLOOP_CONFIG": str(other)}
    assert load_settings(environ=env).stale_run_after == 60.0


@pytest.mark.parametrize(
    ("env", "file", "message"),
    [
        ({"MLOOP_WRITER_BATCH_SIZE": "lots"}, None, "MLOOP_WRITER_BATCH_SIZE"),
        ({"MLOOP_WRITER_BATCH_SIZE": "0"}, None, ">= 1"),
        ({"MLOOP_HEARTBEAT_INTERVAL": "-1"}, None, "heartbeat_interval"),
        ({}, "[mloop]\nwriter_batch_size = 'x'\n", "config file"),
        ({}, "[mloop]\nbogus = 1\n", "unknown setting"),
        ({}, "[mloop\n", "not valid TOML"),
        ({}, "[mloop]\ndefault_experiment = 5\n", "must be a str"),
        ({}, "[mloop]\ngc_grace = true\n", "must be a float"),
        ({"MLOOP_CONFIG": "/nonexistent/mloop.toml"}, None, "does not exist"),
    ],
)
def test_bad_values_name_the_setting(
    tmp_path: Path, env: dict[str, str], file: str | None, message: str
) -> None:
    if file is not None:
        (tmp_path / "config.toml").write_text(file)
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={"MLOOP_HOME": str(tmp_path), **env})


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({"nope": 1}, environ={})


def test_every_setting_is_documented() -> None:
    for setting in SETTINGS:
        assert setting.env.startswith("MLOOP_") and setting.help.endswith(".")
