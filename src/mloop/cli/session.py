"""What every command shares: the global options, the settings and one lazily opened client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mloop.config import Settings, load_settings

if TYPE_CHECKING:
    from mloop.tracking import TrackingClient

__all__ = ["CliSession", "json_option", "pass_session"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliSession:
    """The state of one ``mloop`` invocation: setting overrides and the client built from them."""

    tracking_uri: str | None = None
    artifact_uri: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _client: TrackingClient | None = field(default=None, repr=False)

    @property
    def overrides(self) -> dict[str, str]:
        """The settings given on the command line (``--tracking-uri``, ``--artifact-uri``)."""
        given = {"tracking_uri": self.tracking_uri, "artifact_uri": self.artifact_uri}
        return {name: value for name, value in given.items() if value}

    @property
    def settings(self) -> Settings:
        """Settings resolved from the command line, the environment, the config file, defaults."""
        if self._settings is None:
            self._settings = load_settings(self.overrides)
        return self._settings

    @property
    def client(self) -> TrackingClient:
        """The tracking client every command talks to, opened on first use."""
        if self._client is None:
            from mloop.tracking import TrackingClient

            self._client = TrackingClient(self.settings)
        return self._client

    def close(self) -> None:
        """Release the client's connections, if one was opened."""
        if self._client is not None:
            client, self._client = self._client, None
            client.close()


pass_session = click.make_pass_decorator(CliSession)


def json_option(func: F) -> F:
    """Add ``--json``: print one JSON document on stdout instead of tables."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON document on stdout (stable keys) instead of tables.",
    )(func)
