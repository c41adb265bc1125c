"""Webhook alerts of policies: an allow-list of hosts, retries with backoff, every try recorded.

A policy's ``alert`` URL is checked when the policy is created and again before every send
(the setting may have changed): its scheme must be http or https, it may carry no user or
password, and its host must be listed in the setting ``alert_hosts`` (``MLOOP_ALERT_HOSTS``:
comma-separated ``host``, ``host:port`` or ``*.domain`` entries). An IP literal in a private,
loopback, link-local or reserved range is refused unless it is listed itself — a wildcard never
admits one — and a listed *name* that resolves to such an address when sent is refused too,
unless that address is listed (no server-side request forgery through DNS). The connection
then goes to the very address that was checked (the host name still names the server in the
``Host`` header and for TLS), so a name that resolves differently a moment later — DNS
rebinding — cannot steer it elsewhere. Redirects are not followed.

A delivery POSTs JSON (``{"event", "policy", "deployment", "episode", ...}``) with a timeout,
retries a timeout, a connection error or a 5xx answer with exponential backoff, and records the
outcome (``sent`` or ``failed``, attempts, HTTP status, last error) in the store. It never
raises: a broken webhook must not stop the agent.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mloop.errors import Forbidden, InvalidInput
from mloop.store.records import AlertDelivery

if TYPE_CHECKING:
    from mloop.config import Settings
    from mloop.tracking import TrackingClient

__all__ = ["AlertSender", "allowed_hosts", "check_webhook"]

log = logging.getLogger(__name__)


def allowed_hosts(settings: Settings) -> list[str]:
    """The entries of ``alert_hosts``, lower-cased, empty ones dropped."""
    return [h.strip().lower() for h in settings.alert_hosts.split(",") if h.strip()]


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return bool(
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
        or ip.is_multicast or ip.is_unspecified
    )  # fmt: skip


def _listed(host: str, port: int, entries: list[str]) -> bool:
    """Whether ``host`` (and ``port``) is named by an entry; wildcards match names only."""
    is_ip = _ip(host) is not None
    for entry in entries:
        name, sep, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if not sep:
            name = entry
        if sep and entry_port != str(port):
            continue
        name = name.strip("[]")
        if name == host:
            return True
        if name.startswith("*.") and not is_ip and host.endswith(name[1:]):
            return True
    return False


def check_webhook(url: object, settings: Settings) -> str:
    """Return ``url`` if alerts may be sent to it; raise InvalidInput (malformed) or Forbidden
    (not allowed) with a message saying what to do."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"alert must be a webhook URL, got {url!r}", field="alert")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"alert {url!r} is not an http(s) URL with a host (e.g. https://hooks.example/abc)",
            field="alert",
        )
    if parts.username or parts.password:
        raise InvalidInput("alert URL must not carry a user or password", field="alert")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput(f"alert {url!r} has an invalid port", field="alert") from None
    host = parts.hostname.lower()
    entries = allowed_hosts(settings)
    if not _listed(host, port, entries):
        ip = _ip(host)
        what = "an internal address" if ip is not None and _internal(ip) else "a host"
        raise Forbidden(
            f"alert {url!r} goes to {what} not in MLOOP_ALERT_HOSTS "
            f"({', '.join(entries) or 'empty'}); add {host!r} to that setting to allow it",
            field="alert",
        )
    return url


def _resolve(host: str, port: int, entries: list[str]) -> tuple[str | None, str]:
    """(None, the address to connect to) if every address ``host`` resolves to is public or
    listed; else (the reason, "")."""
    if _ip(host) is not None:
        return None, host.strip("[]")  # an IP literal was checked against the list already
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"cannot resolve {host!r}: {exc}", ""
    for info in infos:
        address = str(info[4][0])
        ip = _ip(address)
        if ip is not None and _internal(ip) and not _listed(address, port, entries):
            return (
                f"{host!r} resolves to the internal address {address}, which MLOOP_ALERT_HOSTS "
                "does not list"
            ), ""
    if not infos:
        return f"cannot resolve {host!r}: no address", ""
    return None, str(infos[0][4][0])


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to ``host`` made to one checked ``address``."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        """Connect to the checked address, not to what the name resolves to now."""
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to ``host`` made to one checked ``address``; the certificate is
    verified for ``host``."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        """Connect to the checked address and speak TLS to ``host`` over it."""
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


@dataclass
class AlertSender:
    """Sends and records webhook alerts: ``attempts`` tries, ``backoff`` seconds before the
    second (doubling), ``timeout`` seconds per try."""

    client: TrackingClient
    attempts: int = 3
    backoff: float = 0.5
    timeout: float = 5.0

    def send(
        self,
        policy: str,
        url: str,
        event: str,
        payload: Mapping[str, Any],
        *,
        episode_id: int | None = None,
    ) -> AlertDelivery:
        """POST ``payload`` to ``url`` with retries and record the delivery; never raises
        (a delivery that cannot even be recorded is logged)."""
        status, attempts, code, error = self._deliver(url, {"event": event, **payload})
        try:
            return self.client.store.add_alert_delivery(
                policy, episode_id=episode_id, event=event, url=url, status=status,
                attempts=attempts, http_status=code, error=error,
            )  # fmt: skip
        except Exception as exc:  # the store is down: say so, keep the agent going
            log.warning("alert %s of policy %s could not be recorded: %s", event, policy, exc)
            return AlertDelivery(
                0, policy, episode_id, event, url, status, attempts, code, error, 0
            )

    def _deliver(
        self, url: str, body: Mapping[str, Any]
    ) -> tuple[str, int, int | None, str | None]:
        settings = self.client.settings
        try:
            check_webhook(url, settings)
        except (InvalidInput, Forbidden) as exc:
            return "failed", 0, None, f"refused: {exc.message}"
        parts = urlsplit(url)
        host = str(parts.hostname).lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        refused, address = _resolve(host, port, allowed_hosts(settings))
        if refused is not None:
            return "failed", 0, None, f"refused: {refused}"
        data = json.dumps(body, default=str).encode("utf-8")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        code: int | None = None
        error: str | None = None
        tries = max(1, self.attempts)
        for attempt in range(1, tries + 1):
            pinned = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
            conn = pinned(host, port, address, self.timeout)
            try:
                conn.request(
                    "POST", path, body=data,
                    headers={"Content-Type": "application/json", "User-Agent": "mloop-agent"},
                )  # fmt: skip
                response = conn.getresponse()
                response.read(65536)
                code = response.status
                if 200 <= code < 300:
                    return "sent", attempt, code, None
                error = f"HTTP {code} {response.reason}"
                if code < 500 and code != 429:
                    return "failed", attempt, code, error  # the hook refused it: do not insist
            except TimeoutError:
                code, error = None, f"timed out after {self.timeout:g}s"
            except OSError as exc:
                code, error = None, f"{type(exc).__name__}: {exc}"
            except http.client.HTTPException as exc:
                code, error = None, f"{type(exc).__name__}: {exc}"
            finally:
                conn.close()
            if attempt < tries:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        return "failed", tries, code, error
