"""The ASGI app of one deployment: MLflow's scoring protocol, the Open Inference Protocol, plain
``/predict`` and ``/feedback``, health and Prometheus metrics.

Every route reads its body under a size limit and a time limit, parses it with its protocol,
routes it to a version (primary, canary or the one the path names), waits for its batch under
the predict timeout and answers; the shadow version, if any, gets a copy whose answer is only
logged. Every :class:`~mloop.errors.MloopError` becomes the one JSON error shape with its
status; anything else is a 500 whose body says only that the server failed (details go to the
server's log, never to the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mloop.errors import (
    MloopError,
    ModelCallFailed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    Timeout,
)
from mloop.serving.config import ServingConfig
from mloop.serving.metrics import ServerMetrics
from mloop.serving.protocols import mlflow as mlflow_protocol
from mloop.serving.protocols import oip, plain
from mloop.serving.runtime import DeploymentRuntime, ServedModel

if TYPE_CHECKING:
    from mloop.serving.batcher import Outcome
    from mloop.serving.predlog import PredictionLog
    from mloop.serving.protocols.common import ParsedInput
    from mloop.tracking.client import TrackingClient

__all__ = ["ServerState", "create_app", "new_request_id", "read_body"]

_log = logging.getLogger("mloop.serving")
_JSON = "application/json"

Handler = Callable[[Request], Awaitable[Response]]


class ServerState:
    """Everything one app holds: its deployment runtime, metrics and prediction log."""

    def __init__(self, deployment: str, config: ServingConfig, client: TrackingClient) -> None:
        self.deployment = deployment
        self.config = config
        self.client = client
        self.metrics = ServerMetrics(deployment)
        self.log: PredictionLog | None = None
        if config.log_predictions:
            from mloop.serving.predlog import PredictionLog

            self.log = PredictionLog(deployment, client=client, worker_id=f"{os.getpid()}")
        self.runtime = DeploymentRuntime(
            deployment, config=config, client=client, metrics=self.metrics, log=self.log
        )
        self._shadow_tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Load and warm the models, start the prediction log."""
        if self.log is not None:
            self.log.start()
        await self.runtime.start()

    async def stop(self) -> None:
        """Drain every model's queue, then flush and close the prediction log."""
        await self.runtime.close()
        if self._shadow_tasks:
            await asyncio.gather(*self._shadow_tasks, return_exceptions=True)
        if self.log is not None:
            try:
                await asyncio.to_thread(self.log.close)
            except MloopError as exc:  # the store stayed down: say what was not written
                _log.error(
                    "deployment %s: prediction log not fully written: %s", self.deployment, exc
                )

    async def predict(
        self,
        request: Request,
        parse: Callable[[ServedModel], tuple[ParsedInput, str | None]],
        *,
        version: int | None = None,
    ) -> tuple[str, Outcome, ServedModel]:
        """Parse, route, batch and wait: the part every protocol shares. ``parse`` reads the
        body against a version's signature and gives its rows and sticky key (if any)."""
        runtime = self.runtime
        if version is not None:
            slot, shadow = runtime.slot_for_version(version), None
            item, _ = parse(slot)
        else:
            primary = runtime.route_primary()
            item, key = parse(primary)
            slot, shadow = runtime.route(self._route_key(request, key))
            if slot is not primary and slot.loaded.signature != primary.loaded.signature:
                item, _ = parse(slot)
        request_id = new_request_id()
        arrival_ms = time.time_ns() // 1_000_000
        if shadow is not None:
            self._mirror(shadow, item, request_id, arrival_ms)
        try:
            async with asyncio.timeout(self.config.predict_timeout_s):
                outcome = await slot.batcher.submit(
                    item, request_id, arrival_ms, runtime.role_of(slot)
                )
        except TimeoutError:
            raise Timeout(
                f"the prediction took longer than {self.config.predict_timeout_s:g} s; "
                "send fewer rows or retry",
                request_id=request_id,
            ) from None
        return request_id, outcome, slot

    def _route_key(self, request: Request, key: str | None) -> str | None:
        header = self.runtime.sticky_key
        if header:
            value = request.headers.get(header)
            if value is not None:
                return value
        return key

    def _mirror(self, shadow: ServedModel, item: ParsedInput, request_id: str, ts: int) -> None:
        async def run() -> None:
            with contextlib.suppress(Exception):  # a shadow never fails the caller
                await shadow.batcher.submit(item, request_id, ts, "shadow")

        task = asyncio.get_running_loop().create_task(run())
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)


def new_request_id() -> str:
    """A time-ordered request id: 13 digits of epoch milliseconds, then 16 random hex digits."""
    return f"{time.time_ns() // 1_000_000:013d}{secrets.token_hex(8)}"


# -- request plumbing -----------------------------------------------------------------------
async def read_body(request: Request, config: ServingConfig) -> bytes:
    """The whole body, refused with 413 past ``max_body_bytes`` and 408 past ``body_timeout_s``."""
    limit = config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the request body is {int(declared)} bytes; the limit is {limit} "
            "(send fewer rows per request, or raise --max-body-bytes)",
            limit=limit,
        )
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(config.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"the request body exceeds the limit of {limit} bytes "
                        "(send fewer rows per request, or raise --max-body-bytes)",
                        limit=limit,
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {config.body_timeout_s:g} s"
        ) from None
    return b"".join(chunks)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response serialised with orjson (numpy values included)."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, headers=headers, media_type=_JSON)


def error_response(exc: MloopError, protocol: str = "") -> Response:
    """The one JSON error shape (the Open Inference Protocol's on its routes: ``error`` is the
    message there, as its clients expect), with Retry-After when the server is unavailable."""
    headers: dict[str, str] = {}
    if isinstance(exc, ServiceUnavailable):
        headers["Retry-After"] = str(exc.details.get("retry_after", 1))
    body = oip.error_body(exc) if protocol == "oip" else exc.to_dict()
    return json_response(body, exc.http_status, headers)


def guarded(state: ServerState, protocol: str, handler: Handler) -> Handler:
    """Wrap a route: errors become JSON answers; every answer is counted and timed."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except ModelCallFailed as exc:
            # The model's own error may hold internals: the log gets it, the client a summary.
            _log.error("deployment %s: %s", state.deployment, exc, exc_info=exc.__cause__)
            response = error_response(
                ModelCallFailed(
                    "the model failed on this request; the server's log has the error",
                    **{k: v for k, v in exc.details.items() if k != "model"},
                ),
                protocol,
            )
            state.metrics.observe_error(protocol, exc.code)
        except MloopError as exc:
            response = error_response(exc, protocol)
            state.metrics.observe_error(protocol, exc.code)
        except Exception:
            _log.exception("deployment %s: %s failed", state.deployment, request.url.path)
            state.metrics.observe_error(protocol, "InternalError")
            response = json_response(
                {"error": "InternalError", "message": "the server failed; see its log"}, 500
            )
        version = response.headers.get("x-model-version")
        state.metrics.observe_request(
            protocol,
            int(version) if version else None,
            response.status_code,
            time.perf_counter() - started,
        )
        return response

    return endpoint


# -- routes ---------------------------------------------------------------------------------
def _answer_headers(request_id: str, slot: ServedModel) -> dict[str, str]:
    return {"X-Request-ID": request_id, "X-Model-Version": str(slot.number)}


def routes(state: ServerState) -> list[Route]:
    """Every route of the app."""
    config = state.config

    async def invocations(request: Request) -> Response:
        body = await read_body(request, config)
        content_type = request.headers.get("content-type", "")
        request_id, outcome, slot = await state.predict(
            request,
            lambda s: (
                mlflow_protocol.parse_invocations(body, content_type, s.loaded.signature),
                None,
            ),
        )
        return Response(
            mlflow_protocol.encode_predictions(outcome.predictions),
            headers=_answer_headers(request_id, slot),
            media_type=_JSON,
        )

    async def predict(request: Request) -> Response:
        body = await read_body(request, config)

        def parse(slot: ServedModel) -> tuple[ParsedInput, str | None]:
            parsed = plain.parse_predict(body, slot.loaded.signature)
            return parsed.inputs, parsed.key

        request_id, outcome, slot = await state.predict(request, parse)
        return Response(
            plain.encode_predict_response(
                request_id, slot.number, outcome.predictions, outcome.probabilities
            ),
            headers=_answer_headers(request_id, slot),
            media_type=_JSON,
        )

    async def feedback(request: Request) -> Response:
        body = await read_body(request, config)
        items = plain.parse_feedback(body)
        if state.log is None:
            raise ServiceUnavailable(
                "this server runs without a prediction log (--no-log), so it cannot take labels"
            )
        log = state.log

        def attach() -> None:
            for i in items:
                try:
                    log.append_feedback(i.request_id, i.labels)
                except NotFound:
                    if config.workers > 1 and _recent_id(i.request_id):
                        # Another worker may hold it unwritten; it writes within seconds.
                        raise ServiceUnavailable(
                            f"request {i.request_id} is not in this worker's prediction log "
                            "yet; with several workers a prediction is known to all once its "
                            "worker writes its log (every 2 s) — retry shortly",
                            retry_after=2,
                        ) from None
                    raise

        await asyncio.to_thread(attach)
        return json_response({"accepted": len(items)}, 202)

    async def infer(request: Request) -> Response:
        name = request.path_params["name"]
        version = _path_version(request)
        _check_model_name(state, name)
        body = await read_body(request, config)
        parsed: list[oip.InferRequest] = []

        def parse(slot: ServedModel) -> tuple[ParsedInput, str | None]:
            infer_request = oip.parse_infer_request(body, request.headers, slot.loaded.signature)
            parsed.append(infer_request)
            return infer_request.inputs, None

        request_id, outcome, slot = await state.predict(request, parse, version=version)
        infer_request = parsed[-1]
        available = oip.prediction_outputs(outcome.predictions, outcome.probabilities)
        names, binary = infer_request.select_outputs(list(available))
        payload, headers = oip.encode_infer_response(
            name, slot.number, infer_request.id or request_id,
            {n: available[n] for n in names}, binary,
        )  # fmt: skip
        headers.update(_answer_headers(request_id, slot))
        media = headers.pop("content-type")
        return Response(payload, headers=headers, media_type=media)

    async def model_metadata(request: Request) -> Response:
        name = request.path_params["name"]
        _check_model_name(state, name)
        version = _path_version(request)
        runtime = state.runtime
        slot = runtime.primary if version is None else runtime.slot_for_version(version)
        return json_response(
            oip.model_metadata(
                name,
                [str(v) for v in runtime.served_versions()],
                slot.loaded.signature,
                platform=f"mloop-{slot.loaded.flavor}",
                has_proba=slot.loaded.has_proba,
                output_examples=slot.output_examples,
            )
        )

    async def model_ready(request: Request) -> Response:
        name = request.path_params["name"]
        _check_model_name(state, name)
        version = _path_version(request)
        runtime = state.runtime
        if version is not None:
            runtime.slot_for_version(version)
        if not runtime.ready:
            raise ServiceUnavailable("the model is still loading")
        return json_response({"name": name, "ready": True})

    async def server_metadata(request: Request) -> Response:
        return json_response(oip.server_metadata())

    async def live(request: Request) -> Response:
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        if not state.runtime.ready:
            raise ServiceUnavailable("the model is still loading")
        return json_response({"ready": True})

    async def ping(request: Request) -> Response:
        if not state.runtime.ready:
            raise ServiceUnavailable("the model is still loading")
        return Response("\n", media_type="text/plain")

    async def version_info(request: Request) -> Response:
        from mloop import __version__

        runtime = state.runtime
        return json_response(
            {
                "mloop": __version__,
                "deployment": state.deployment,
                "model": runtime.model_name,
                "versions": runtime.served_versions(),
            }
        )

    async def metrics(request: Request) -> Response:
        if state.runtime.slots:
            for slot in list(state.runtime.slots.values()):
                state.metrics.queue_depth.labels(state.deployment, str(slot.number)).set(
                    slot.batcher.queued_rows
                )
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    def r(path: str, handler: Handler, protocol: str, methods: list[str]) -> Route:
        return Route(path, guarded(state, protocol, handler), methods=methods)

    v2 = "/v2/models/{name}"
    return [
        r("/invocations", invocations, "mlflow", ["POST"]),
        r("/ping", ping, "health", ["GET"]),
        r("/health", ping, "health", ["GET"]),
        r("/version", version_info, "health", ["GET"]),
        r("/predict", predict, "plain", ["POST"]),
        r("/feedback", feedback, "feedback", ["POST"]),
        r("/metrics", metrics, "metrics", ["GET"]),
        r("/v2", server_metadata, "oip", ["GET"]),
        r("/v2/health/live", live, "health", ["GET"]),
        r("/v2/health/ready", ready, "health", ["GET"]),
        r(v2, model_metadata, "oip", ["GET"]),
        r(v2 + "/ready", model_ready, "oip", ["GET"]),
        r(v2 + "/infer", infer, "oip", ["POST"]),
        r(v2 + "/versions/{version}", model_metadata, "oip", ["GET"]),
        r(v2 + "/versions/{version}/ready", model_ready, "oip", ["GET"]),
        r(v2 + "/versions/{version}/infer", infer, "oip", ["POST"]),
    ]


def _recent_id(request_id: str) -> bool:
    """True for an id this server family could have issued in the last 30 seconds."""
    head = request_id[:13]
    if len(request_id) != 29 or not head.isdigit():
        return False
    return 0 <= time.time_ns() // 1_000_000 - int(head) < 30_000


def _path_version(request: Request) -> int | None:
    from mloop.errors import InvalidInput

    raw = request.path_params.get("version")
    if raw is None:
        return None
    if not str(raw).isdigit():
        raise InvalidInput(f"model version {raw!r} in the path is not a number", field="version")
    return int(raw)


def _check_model_name(state: ServerState, name: str) -> None:
    if name not in (state.deployment, state.runtime.model_name):
        raise NotFound(
            f"this server serves model {state.runtime.model_name!r} (deployment "
            f"{state.deployment!r}), not {name!r}",
            model=name,
        )


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(NotFound(f"no route {request.method} {request.url.path}"))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return json_response(
        {"error": "MethodNotAllowed", "message": f"{request.method} is not allowed here"}, 405
    )


def create_app(
    deployment: str,
    *,
    config: ServingConfig | None = None,
    client: TrackingClient | None = None,
) -> Starlette:
    """The ASGI app serving ``deployment``; models load (and warm) at startup."""
    from mloop.tracking.fluent import client_or_default

    config = config or ServingConfig()
    state = ServerState(deployment, config, client_or_default(client))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = Starlette(
        routes=routes(state),
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _method_not_allowed},
    )
    app.state.mloop = state
    return app
