"""``serve``: run a deployment's app on uvicorn, in one process or ``workers`` processes."""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.serving.config import ServingConfig

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from mloop.tracking.client import TrackingClient

__all__ = ["app_from_env", "ensure_deployment", "serve"]

_log = logging.getLogger("mloop.serving")

_ENV_DEPLOYMENT = "MLOOP_SERVE_DEPLOYMENT"
_ENV_CONFIG = "MLOOP_SERVE_CONFIG"


def ensure_deployment(
    target: str, *, deployment: str | None = None, client: TrackingClient | None = None
) -> str:
    """The deployment to serve for ``target``: an existing deployment's name, or a model URI
    (``name@alias``, ``name/N``, ``models:/…``) whose deployment (named ``deployment`` or after
    the model) is created on first use. Raises Conflict when that name serves another model."""
    from mloop.registry.uri import parse_model_uri
    from mloop.serving.deployments import create_deployment, get_deployment
    from mloop.tracking.fluent import client_or_default

    client = client_or_default(client)
    bare = not target.startswith("models:/") and "@" not in target and "/" not in target
    if deployment is None and bare:
        try:
            return get_deployment(target, client=client).name
        except (NotFound, InvalidInput):
            pass
    ref = parse_model_uri(target)
    name = deployment or ref.name
    try:
        existing = get_deployment(name, client=client)
    except NotFound:
        return create_deployment(name, str(ref), client=client).name
    if (existing.model, existing.alias, existing.version) == (ref.name, ref.alias, ref.version):
        return existing.name
    raise Conflict(
        f"deployment {name!r} already serves {existing.model_uri}, not {ref}; serve it with "
        f"`mloop serve {name}`, or pick another name with --deployment",
        deployment=name,
    )


def serve(
    target: str,
    *,
    config: ServingConfig | None = None,
    deployment: str | None = None,
    client: TrackingClient | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve ``target`` (a deployment or a model URI) until interrupted; blocks. ``announce``
    is called with the deployment's name once it is known, just before the server starts."""
    import uvicorn

    from mloop.serving.app import create_app
    from mloop.tracking.fluent import client_or_default

    config = config or ServingConfig()
    client = client_or_default(client)
    name = ensure_deployment(target, deployment=deployment, client=client)
    if not _is_loopback(config.host):
        _log.warning(
            "warning: binding %s exposes the model to the network without authentication",
            config.host,
        )
    if announce is not None:
        announce(name)
    options = _uvicorn_options(config)
    if config.workers == 1:
        uvicorn.run(create_app(name, config=config, client=client), **options)
        return
    # Workers are fresh processes: they read the deployment, the settings and the store from
    # the environment, and share one folder for their Prometheus metrics.
    metrics_dir = tempfile.mkdtemp(prefix="mloop-metrics-")
    saved = {k: os.environ.get(k) for k in _worker_env_keys()}
    try:
        os.environ.update(
            {
                _ENV_DEPLOYMENT: name,
                _ENV_CONFIG: config.to_json(),
                "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
                **_store_env(client),
            }
        )
        uvicorn.run(
            "mloop.serving.server:app_from_env", factory=True, workers=config.workers, **options
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only (``localhost``, 127.x, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any address
        return False


def _uvicorn_options(config: ServingConfig) -> dict[str, Any]:
    return {
        "host": config.host,
        "port": config.port,
        "log_level": "warning",
        "access_log": False,
        # uvicorn waits with asyncio.wait_for, so seconds may be fractional (0: do not wait).
        "timeout_graceful_shutdown": config.graceful_timeout_s,
        "server_header": False,
    }


def _worker_env_keys() -> list[str]:
    return [
        _ENV_DEPLOYMENT, _ENV_CONFIG, "PROMETHEUS_MULTIPROC_DIR", "MLOOP_TRACKING_URI",
        "MLOOP_ARTIFACT_URI",
    ]  # fmt: skip


def _store_env(client: TrackingClient) -> dict[str, str]:
    settings = client.settings
    env = {}
    if settings.tracking_uri:
        env["MLOOP_TRACKING_URI"] = settings.tracking_uri
    if settings.artifact_uri:
        env["MLOOP_ARTIFACT_URI"] = settings.artifact_uri
    return env


def app_from_env() -> Starlette:
    """The app of one worker process, built from what :func:`serve` put in the environment."""
    from mloop.serving.app import create_app

    name = os.environ.get(_ENV_DEPLOYMENT)
    text = os.environ.get(_ENV_CONFIG)
    if not name or not text:
        raise InvalidInput(
            f"{_ENV_DEPLOYMENT} and {_ENV_CONFIG} are not set; start workers with `mloop serve`"
        )
    return create_app(name, config=ServingConfig.from_json(text))
