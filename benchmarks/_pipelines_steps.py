"""Steps and pipelines of benchmarks/pipelines.py (importable by workers: module-level)."""

from __future__ import annotations

import time

from mloop.pipelines import pipeline, step

#: Steps in the overhead and cache pipelines; seconds and count of the CPU-bound ones.
CHAIN = 100
BUSY_SECONDS = 2.0
BUSY_STEPS = 8


@step(cache=False)
def bump(value: int) -> int:
    """A trivial step, never cached: what the runner costs per step."""
    return value + 1


@step
def bump_cached(value: int) -> int:
    """A trivial step that the cache may skip."""
    return value + 1


@step(cache=False)
def busy(index: int, seconds: float) -> int:
    """Spin the CPU for ``seconds`` (no sleeping: it must hold a core)."""
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        count += 1
    return index


@pipeline
def chain(steps: int = CHAIN) -> None:
    """``steps`` trivial uncached steps in a row."""
    value = bump(0)
    for _ in range(steps - 1):
        value = bump(value)


@pipeline
def cached_chain(steps: int = CHAIN) -> None:
    """``steps`` trivial cached steps in a row."""
    value = bump_cached(0)
    for _ in range(steps - 1):
        value = bump_cached(value)


@pipeline
def fan(count: int = BUSY_STEPS, seconds: float = BUSY_SECONDS) -> None:
    """``count`` independent CPU-bound steps."""
    for index in range(count):
        busy(index, seconds)
