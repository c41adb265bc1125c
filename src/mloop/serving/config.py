"""The knobs of a model server, their defaults and their limits (documented in docs/serving.md)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from mloop.errors import InvalidInput

__all__ = ["ServingConfig"]


@dataclass(frozen=True)
class ServingConfig:
    """How a deployment is served: address, batching, limits, timeouts and the prediction log."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    #: Most rows one predict call takes; concurrent requests are coalesced up to this.
    max_batch_size: int = 256
    #: Longest a request waits for others to join its batch once the model is free (ms).
    max_latency_ms: float = 2.0
    #: Rows waiting for the model before new requests are refused with 503 (overload).
    max_queue_rows: int = 4096
    #: Largest request body accepted (bytes); larger ones get 413.
    max_body_bytes: int = 8 * 1024 * 1024
    #: A request whose prediction is not ready after this many seconds gets 504.
    predict_timeout_s: float = 10.0
    #: A client that has not sent its whole body after this many seconds gets 408.
    body_timeout_s: float = 10.0
    #: Write every prediction to the prediction log (Parquet in the artifact store).
    log_predictions: bool = True
    #: How often the deployment (traffic split, followed alias) is re-read (seconds).
    poll_interval_s: float = 1.0
    #: Seconds in-flight requests get to finish on shutdown.
    graceful_timeout_s: float = 30.0
    #: Threads one predict call may use (OpenMP, BLAS). Small batches gain nothing from more,
    #: and spinning threads steal the CPU the server needs to read and answer requests.
    model_threads: int = 1
    #: Load model formats that unpickle code (pyfunc, untrusted skops types): only for your own.
    trusted: bool = False

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool]] = [
            ("port", 0 <= self.port <= 65535),
            ("workers", 1 <= self.workers <= 64),
            ("model_threads", 1 <= self.model_threads <= 256),
            ("max_batch_size", 1 <= self.max_batch_size <= 100_000),
            ("max_latency_ms", 0 <= self.max_latency_ms <= 10_000),
            ("max_queue_rows", self.max_queue_rows >= 1),
            ("max_body_bytes", self.max_body_bytes >= 1024),
            ("predict_timeout_s", self.predict_timeout_s > 0),
            ("body_timeout_s", self.body_timeout_s > 0),
            ("poll_interval_s", self.poll_interval_s > 0),
            ("graceful_timeout_s", self.graceful_timeout_s >= 0),
        ]
        for name, ok in checks:
            if not ok:
                raise InvalidInput(
                    f"serving setting {name}={getattr(self, name)!r} is out of range; "
                    "see docs/serving.md for the allowed values",
                    field=name,
                )

    def to_json(self) -> str:
        """The settings as JSON (how a parent process hands them to its workers)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServingConfig:
        """Settings from :meth:`to_json`'s output."""
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
