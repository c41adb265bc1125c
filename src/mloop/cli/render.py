"""How the CLI shows things: JSON documents for scripts, rich tables and small text for people."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = [
    "SPARK_BARS",
    "emit_json",
    "err",
    "format_bytes",
    "format_duration",
    "format_time",
    "format_value",
    "out",
    "progress",
    "short_id",
    "sparkline",
    "spinner",
    "to_jsonable",
]

SPARK_BARS = "▁▂▃▄▅▆▇█"
SHORT_ID = 8


def out() -> Console:
    """A console on stdout for people; markup is off so that names are never read as styles."""
    return Console(highlight=False, markup=False)


def err() -> Console:
    """A console on stderr, for progress bars, so that stdout stays clean for pipes."""
    return Console(stderr=True, highlight=False, markup=False)


def to_jsonable(value: Any) -> Any:
    """Turn records, enums and non-finite floats into plain JSON values.

    NaN and infinities become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (as the
    protobuf JSON mapping writes them), because bare NaN is not valid JSON.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(to_jsonable(document), indent=2, allow_nan=False))


def short_id(run_id: str | None) -> str:
    """The last characters of an id (its random part: ids start with their creation time),
    enough to tell runs apart in a table; every command accepts it in place of the id."""
    return (run_id or "")[-SHORT_ID:]


def format_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local time, or ``-``."""
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(start_ms: int | None, end_ms: int | None) -> str:
    """A short human duration between two millisecond times (until now when ``end_ms`` is None)."""
    if start_ms is None:
        return "-"
    end = end_ms if end_ms is not None else int(time.time() * 1000)
    seconds = max(0.0, (end - start_ms) / 1000)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_value(value: float | str | None) -> str:
    """A metric or param value, short: floats with up to 4 significant decimals."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}" if abs(value) >= 1e4 or abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def format_bytes(size: int) -> str:
    """A byte count in B, KiB, MiB, GiB."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"  # pragma: no cover - loop always returns


def sparkline(values: Sequence[float], width: int = 30) -> str:
    """A one-line text chart of a series (NaN and infinities drawn as spaces)."""
    if not values:
        return ""
    if len(values) > width:
        # Average each bucket so that a long history keeps its shape.
        buckets: list[float] = []
        for i in range(width):
            lo = i * len(values) // width
            hi = max(lo + 1, (i + 1) * len(values) // width)
            chunk = [v for v in values[lo:hi] if math.isfinite(v)]
            buckets.append(sum(chunk) / len(chunk) if chunk else math.nan)
        values = buckets
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return " " * len(values)
    low, high = min(finite), max(finite)
    span = high - low
    chars = []
    for v in values:
        if not math.isfinite(v):
            chars.append(" ")
        elif span == 0:
            chars.append(SPARK_BARS[len(SPARK_BARS) // 2])
        else:
            chars.append(SPARK_BARS[round((v - low) / span * (len(SPARK_BARS) - 1))])
    return "".join(chars)


def progress(*, enabled: bool = True) -> Progress:
    """A progress bar on stderr (silent when ``enabled`` is false, e.g. under ``--json``)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err(),
        disable=not enabled,
        transient=False,
    )


@contextmanager
def spinner(message: str, *, enabled: bool = True) -> Iterator[None]:
    """Show an indeterminate progress line on stderr while a single long call runs."""
    with Progress(
        SpinnerColumn(),
        TextColumn(message),
        BarColumn(),
        TimeElapsedColumn(),
        console=err(),
        disable=not enabled,
        transient=True,
    ) as bar:
        bar.add_task(message, total=None)
        yield
