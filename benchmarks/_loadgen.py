"""A small closed-loop HTTP load generator, run as its own process by serving.py.

    python benchmarks/_loadgen.py SPEC_JSON

SPEC: ``host``, ``port``, ``path``, ``bodies`` (a file holding a JSON list of request bodies,
sent in turn), ``rows`` (rows per request), ``concurrency``, ``warmup_s``, ``duration_s`` and
``result`` (where the JSON result goes).

It is kept cheap so that it does not starve the server of CPU on a small machine: one process,
asyncio (on uvloop when installed), raw keep-alive HTTP/1.1 connections, request bytes built
before the clock starts, and a minimal response parser (status line, Content-Length or chunked
body). Each of the ``concurrency`` connections sends its next request when the previous answer
has arrived, so at most ``concurrency`` requests are ever in flight. Requests that complete
during the warm-up are not counted; after ``warmup_s + duration_s`` no request is sent, and
those still in flight are awaited but not counted. Standard library only (uvloop optional).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

perf = time.perf_counter

#: Answers other than 200 whose first bytes are kept and printed, at most.
MAX_ERROR_SAMPLES = 5


def build_requests(host: str, port: int, path: str, bodies: list[bytes]) -> list[bytes]:
    """The full bytes of one POST per body (keep-alive, JSON)."""
    out = []
    for body in bodies:
        head = (
            f"POST {path} HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            "Content-Type: application/json\r\n"
            "Accept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "\r\n"
        ).encode("ascii")
        out.append(head + body)
    return out


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one HTTP/1.1 response: its status code, its body, and whether the server keeps the
    connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = -1
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            keep_alive = False
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                break
            parts.append(await reader.readexactly(size + 2))
        return status, b"".join(p[:-2] for p in parts), keep_alive
    if length < 0:
        raise ConnectionError("response has neither Content-Length nor chunked encoding")
    body = await reader.readexactly(length) if length else b""
    return status, body, keep_alive


class Tally:
    """What the connections record, shared by all of them (one event loop, no locks)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.ok = 0
        self.errors = 0
        self.statuses: dict[str, int] = {}
        self.error_samples: list[str] = []
        self.reconnects = 0
        #: 200 answers at any time, warm-up and tail included (what the server predicted).
        self.answered_total = 0

    def error(self, what: str) -> None:
        """Count one failed request and keep a sample of the first few."""
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(what[:300])


async def connection(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    start_at: float,
    stop_at: float,
    tally: Tally,
) -> None:
    """One keep-alive connection sending requests back to back until ``stop_at``."""
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    n = len(requests)
    while True:
        t0 = perf()
        if t0 >= stop_at:
            break
        try:
            writer.write(requests[i % n])
            status, body, keep_alive = await read_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError, OSError, ValueError) as exc:
            t1 = perf()
            if t1 >= start_at:
                tally.error(f"connection error: {type(exc).__name__}: {exc}")
            writer.close()
            tally.reconnects += 1
            reader, writer = await asyncio.open_connection(host, port)
            continue
        t1 = perf()
        i += 1
        if not keep_alive:  # not an error: open a new connection for the next request
            writer.close()
            tally.reconnects += 1
            reader, writer = await asyncio.open_connection(host, port)
        if status == 200:
            tally.answered_total += 1
        if t1 < start_at or t1 > stop_at:
            continue
        key = str(status)
        tally.statuses[key] = tally.statuses.get(key, 0) + 1
        if status == 200:
            tally.ok += 1
            tally.latencies.append(t1 - t0)
        else:
            tally.error(f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
    writer.close()


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) of already sorted values, nearest rank; None if empty."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load described by ``spec`` and return its figures."""
    host, port = spec["host"], int(spec["port"])
    bodies = [json.dumps(b).encode() for b in json.loads(Path(spec["bodies"]).read_text())]
    requests = build_requests(host, port, spec["path"], bodies)
    concurrency = int(spec["concurrency"])
    warmup, duration = float(spec["warmup_s"]), float(spec["duration_s"])
    tally = Tally()
    t_begin = perf()
    start_at = t_begin + warmup
    stop_at = start_at + duration
    tasks = [
        asyncio.create_task(connection(host, port, requests, k, start_at, stop_at, tally))
        for k in range(concurrency)
    ]
    done = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [f"{type(d).__name__}: {d}" for d in done if isinstance(d, BaseException)]
    lat = sorted(tally.latencies)
    rows = int(spec["rows"])

    def ms(x: float | None) -> float | None:
        return None if x is None else round(x * 1000, 3)

    return {
        "concurrency": concurrency,
        "warmup_s": warmup,
        "duration_s": duration,
        "rows_per_request": rows,
        "requests_ok": tally.ok,
        "answered_total": tally.answered_total,
        "errors": tally.errors,
        "statuses": tally.statuses,
        "error_samples": tally.error_samples,
        "reconnects": tally.reconnects,
        "connection_failures": failures,
        "req_per_s": tally.ok / duration,
        "rows_per_s": tally.ok * rows / duration,
        "p50_ms": ms(percentile(lat, 50)),
        "p90_ms": ms(percentile(lat, 90)),
        "p99_ms": ms(percentile(lat, 99)),
        "max_ms": ms(lat[-1] if lat else None),
        "mean_ms": ms(sum(lat) / len(lat) if lat else None),
        "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }


def main() -> None:
    """Entry point: ``_loadgen.py SPEC_JSON``; writes the figures to spec['result']."""
    spec = json.loads(sys.argv[1])
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(drive(spec))
    else:
        result = uvloop.run(drive(spec))
    Path(spec["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
