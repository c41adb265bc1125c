"""``mloop serve``: serve a deployment or a model version over HTTP (see docs/serving.md)."""

from __future__ import annotations

import click

from mloop.cli.render import emit_json, out
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.serving.config import ServingConfig

__all__ = ["serve"]

#: The option defaults are the settings' own (one place to change them).
_DEFAULTS = ServingConfig()


@click.command("serve")
@click.argument("target", metavar="DEPLOYMENT|MODEL_URI")
@click.option("--deployment", metavar="NAME", help="Name of the deployment to create or serve.")
@click.option("--host", default=_DEFAULTS.host, show_default=True, help="Address to bind.")
@click.option("--port", default=_DEFAULTS.port, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--workers", default=_DEFAULTS.workers, show_default=True, type=int, help="Server processes."
)
@click.option(
    "--max-batch-size", default=_DEFAULTS.max_batch_size, show_default=True, type=int,
    help="Most rows one predict call takes.",
)  # fmt: skip
@click.option(
    "--max-latency-ms", default=_DEFAULTS.max_latency_ms, show_default=True, type=float,
    help="Longest a request waits for others to join its batch.",
)  # fmt: skip
@click.option(
    "--max-queue-rows", default=_DEFAULTS.max_queue_rows, show_default=True, type=int,
    help="Queued rows past which requests get 503.",
)  # fmt: skip
@click.option(
    "--max-body-bytes", default=_DEFAULTS.max_body_bytes, show_default=True, type=int,
    help="Largest request body (413 above).",
)  # fmt: skip
@click.option(
    "--timeout", "predict_timeout_s", default=_DEFAULTS.predict_timeout_s, show_default=True,
    type=float, help="Seconds before a prediction is answered 504.",
)  # fmt: skip
@click.option("--no-log", is_flag=True, help="Do not write the prediction log.")
@click.option(
    "--poll-interval", default=_DEFAULTS.poll_interval_s, show_default=True, type=float,
    help="Seconds between reads of the deployment (alias moves, traffic changes).",
)  # fmt: skip
@click.option("--trusted", is_flag=True, help="Allow model formats that unpickle code.")
@json_option
@pass_session
def serve(
    session: CliSession,
    *,
    target: str,
    deployment: str | None,
    host: str,
    port: int,
    workers: int,
    max_batch_size: int,
    max_latency_ms: float,
    max_queue_rows: int,
    max_body_bytes: int,
    predict_timeout_s: float,
    no_log: bool,
    poll_interval: float,
    trusted: bool,
    as_json: bool,
) -> None:
    """Serve a model over HTTP until interrupted (Ctrl-C drains in-flight requests).

    TARGET is a deployment name, or a model URI (name@alias, name/N, models:/…) whose
    deployment is created on first use (named after the model, or --deployment). A deployment
    that follows an alias swaps models when the alias moves, without failing a request.

    \b
    Routes: POST /invocations (MLflow), /v2/... (Open Inference Protocol),
    POST /predict and /feedback, GET /metrics, /ping, /health, /version.

    \b
    Example:
      mloop serve fraud-detector@champion --port 8080
    """
    from mloop.serving.server import serve as run_server

    config = ServingConfig(
        host=host, port=port, workers=workers, max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms, max_queue_rows=max_queue_rows,
        max_body_bytes=max_body_bytes, predict_timeout_s=predict_timeout_s,
        log_predictions=not no_log, poll_interval_s=poll_interval, trusted=trusted,
    )  # fmt: skip
    url = f"http://{host}:{port}"

    def announce(name: str) -> None:
        if as_json:
            emit_json({"deployment": name, "url": url, "workers": workers})
        else:
            out().print(f"serving deployment {name} on {url} ({workers} worker(s))")

    run_server(
        target, config=config, deployment=deployment, client=session.client, announce=announce
    )
