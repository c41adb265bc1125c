"""Webhook alerts against a real loopback HTTP server: the allow-list (no SSRF), delivery,
retries on 500 and timeouts, and what is recorded — never an exception in the agent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mloop.config import load_settings
from mloop.errors import Forbidden, InvalidInput
from mloop.loop import Agent, Canary, policies
from mloop.loop.alerts import AlertSender, check_webhook
from mloop.tracking import TrackingClient, reset_default_client
from tests.loop.scenario import DEP, MINUTE, make_scenario, now_ms


@dataclass
class Hook:
    """A loopback webhook: answers ``status`` (after ``delay`` seconds) and keeps the bodies."""

    url: str = ""
    status: int = 200
    delay: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(size))
            with state.lock:
                state.bodies.append(body)
            if state.delay:
                time.sleep(state.delay)
            try:
                self.send_response(state.status)
                self.send_header("Content-Length", "2")
                if 300 <= state.status < 400:
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/mloop"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def allowed(mloop_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TrackingClient]:
    """A client whose settings allow alerts to 127.0.0.1."""
    monkeypatch.setenv("MLOOP_ALERT_HOSTS", "hooks.example, 127.0.0.1")
    reset_default_client()
    with TrackingClient(load_settings()) as tracking:
        yield tracking
    reset_default_client()


def settings(hosts: str) -> Any:
    return load_settings(overrides={"alert_hosts": hosts}, environ={})


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("https://evil.example/x", "hooks.example"),
        ("http://127.0.0.1:9/x", ""),
        ("http://127.0.0.1:9/x", "*.example"),
        ("http://10.0.0.5/x", "hooks.example"),
        ("http://[::1]:8080/x", "hooks.example"),
        ("http://169.254.169.254/latest/meta-data", "*.example, hooks.example"),
        ("https://hooks.example:8443/x", "hooks.example:443"),
        ("https://a.hooks.example.evil.com/x", "*.hooks.example"),
    ],
)
def test_hosts_not_listed_are_refused(url: str, hosts: str) -> None:
    with pytest.raises(Forbidden, match="MLOOP_ALERT_HOSTS"):
        check_webhook(url, settings(hosts))


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("https://hooks.example/abc", "hooks.example"),
        ("https://HOOKS.example/abc", "hooks.example"),
        ("https://team.hooks.example/abc", "*.hooks.example"),
        ("https://hooks.example:8443/x", "hooks.example:8443"),
        ("http://127.0.0.1:9/x", "127.0.0.1"),
        ("http://[::1]:8080/x", "::1"),
    ],
)
def test_listed_hosts_are_allowed(url: str, hosts: str) -> None:
    assert check_webhook(url, settings(hosts)) == url


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example/x", "hooks.example/x", "", "http://user:pw@hooks.example/x", 3]
)
def test_malformed_webhooks_are_invalid(url: Any) -> None:
    with pytest.raises(InvalidInput, match="alert"):
        check_webhook(url, settings("hooks.example"))


def test_policy_creation_refuses_a_webhook_not_allowed(client: TrackingClient) -> None:
    scenario = make_scenario(client)
    with pytest.raises(Forbidden, match=r"add '10\.1\.2\.3' to that setting"):
        policies.create(
            deployment=DEP, retrain="tests.loop.flows:retrain", alert="http://10.1.2.3/hook",
            client=scenario.client,
        )  # fmt: skip
    assert client.store.list_policies() == []  # nothing written


def test_a_delivery_posts_json_and_is_recorded(allowed: TrackingClient, hook: Hook) -> None:
    scenario = make_scenario(allowed)
    policies.create(
        deployment=DEP, retrain="tests.loop.flows:retrain", alert=hook.url, client=allowed
    )
    sent = AlertSender(allowed, backoff=0.01).send(DEP, hook.url, "test", {"x": 1})
    assert (sent.status, sent.attempts, sent.http_status) == ("sent", 1, 200)
    assert hook.bodies == [{"event": "test", "x": 1}]
    assert policies.alerts(DEP, client=scenario.client)[0].status == "sent"


def test_a_500_is_retried_then_recorded_failed(allowed: TrackingClient, hook: Hook) -> None:
    make_scenario(allowed)
    policies.create(deployment=DEP, retrain="tests.loop.flows:retrain", client=allowed)
    hook.status = 500
    sent = AlertSender(allowed, attempts=3, backoff=0.01).send(DEP, hook.url, "test", {})
    assert (sent.status, sent.attempts, sent.http_status) == ("failed", 3, 500)
    assert "HTTP 500" in str(sent.error) and len(hook.bodies) == 3


def test_a_timeout_is_retried_then_recorded_failed(allowed: TrackingClient, hook: Hook) -> None:
    make_scenario(allowed)
    policies.create(deployment=DEP, retrain="tests.loop.flows:retrain", client=allowed)
    hook.delay = 0.5
    sent = AlertSender(allowed, attempts=2, backoff=0.01, timeout=0.1).send(
        DEP, hook.url, "test", {}
    )
    assert (sent.status, sent.attempts) == ("failed", 2)
    assert "timed out" in str(sent.error)


def test_a_redirect_is_not_followed(allowed: TrackingClient, hook: Hook) -> None:
    make_scenario(allowed)
    policies.create(deployment=DEP, retrain="tests.loop.flows:retrain", client=allowed)
    hook.status = 302
    sent = AlertSender(allowed, backoff=0.01).send(DEP, hook.url, "test", {})
    assert (sent.status, sent.attempts, sent.http_status) == ("failed", 1, 302)


def test_the_connection_goes_to_the_address_that_was_checked(
    allowed: TrackingClient, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: the listed name first resolves to an allowed address, then to the cloud
    # metadata address. The delivery must reach the address checked, and resolve only once.
    import socket

    make_scenario(allowed)
    policies.create(deployment=DEP, retrain="tests.loop.flows:retrain", client=allowed)
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "169.254.169.254"])
    asked: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.example":
            return real(host, port, *args, **kwargs)
        asked.append(host)
        address = next(answers, "169.254.169.254")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = hook.url.replace("127.0.0.1", "hooks.example")
    sent = AlertSender(allowed, backoff=0.01, timeout=2).send(DEP, url, "test", {"x": 1})
    assert (sent.status, sent.http_status) == ("sent", 200), sent.error
    assert hook.bodies == [{"event": "test", "x": 1}] and asked == ["hooks.example"]
    # The next send resolves again, and the metadata address is refused before connecting.
    again = AlertSender(allowed, backoff=0.01, timeout=2).send(DEP, url, "test", {})
    assert again.status == "failed" and again.attempts == 0
    assert "internal address 169.254.169.254" in str(again.error)


def test_a_host_removed_from_the_setting_is_refused_when_sending(
    allowed: TrackingClient, hook: Hook
) -> None:
    make_scenario(allowed)
    policies.create(deployment=DEP, retrain="tests.loop.flows:retrain", client=allowed)
    narrowed = TrackingClient(load_settings(overrides={"alert_hosts": "hooks.example"}))
    try:
        sent = AlertSender(narrowed).send(DEP, hook.url, "test", {})
    finally:
        narrowed.close()
    assert sent.status == "failed" and sent.attempts == 0 and "refused" in str(sent.error)
    assert hook.bodies == []


def test_the_agent_alerts_on_trigger_and_end_even_when_the_hook_fails(
    allowed: TrackingClient, hook: Hook
) -> None:
    scenario = make_scenario(allowed)
    policies.create(
        deployment=DEP, retrain="tests.loop.flows:retrain", alert=hook.url, cooldown="1h",
        rollout=Canary(steps=[1.0], hold="0.1s", min_rows=0), client=allowed,
    )  # fmt: skip
    t = now_ms()
    scenario.log(t - 20 * MINUTE, t - 1000, 600)
    scenario.report(t - 20 * MINUTE, t - 10 * MINUTE)
    hook.status = 500
    agent = Agent(allowed, monitors=False, alert_backoff=0.01)
    for _ in range(30):
        result = agent.tick()
        assert result.errors == []
        if not allowed.store.list_episodes(open_only=True):
            break
        time.sleep(0.1)
    [episode] = allowed.store.list_episodes()
    assert episode.state == "promoted"
    deliveries = policies.alerts(DEP, client=allowed)
    assert [d.event for d in deliveries] == ["episode.triggered", "episode.promoted"]
    assert all(d.status == "failed" and d.attempts == 3 for d in deliveries)
    assert hook.bodies[0]["report_ids"] == [1] and hook.bodies[-1]["state"] == "promoted"
