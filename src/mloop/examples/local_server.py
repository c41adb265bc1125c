"""A deployment served over HTTP on a free loopback port by uvicorn in a thread, and a JSON
POST helper: what the demos use to talk to a real server from the same process."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.tracking.client import TrackingClient

__all__ = ["LocalServer", "free_port", "post_json"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post_json(url: str, payload: Any, *, attempts: int = 5) -> Any:
    """POST ``payload`` as JSON and return the decoded answer; a 503 (the server asks to come
    back) is retried, any other error status is a RuntimeError quoting the answer."""
    body = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or attempt == attempts - 1:
                detail = exc.read().decode(errors="replace")[:300]
                raise RuntimeError(f"POST {url} answered {exc.code}: {detail}") from None
            time.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"POST {url}: no attempt made (attempts={attempts})")


class LocalServer:
    """A deployment served by uvicorn in a thread on a free loopback port, as a context
    manager: started (models loaded) on entry, drained and stopped on exit."""

    def __init__(self, deployment: str, client: TrackingClient) -> None:
        import uvicorn

        from mloop.serving.app import create_app
        from mloop.serving.config import ServingConfig

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = ServingConfig(port=self.port, poll_interval_s=0.2, model_threads=1)
        self.app = create_app(deployment, config=config, client=client)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
            )
        )
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve()), name="mloop-demo-server", daemon=True
        )

    def __enter__(self) -> LocalServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo's model server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

    def flush(self) -> None:
        """Write the server's buffered predictions and labels now (it would within 2 s)."""
        log = self.app.state.mloop.log
        if log is not None:
            log.flush()
