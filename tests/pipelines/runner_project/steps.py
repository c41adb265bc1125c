"""Steps and pipelines the runner tests run; copied into a temp folder as package ``rnproj``.

Each step appends to ``<MLOOP_TEST_RUNNER_DIR>/<name>.count`` so tests can tell how often it ran
(in this process or in a spawned worker, which inherits the environment).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rnproj.helpers import scale

from mloop.pipelines import pipeline, step


def _dir() -> Path:
    return Path(os.environ["MLOOP_TEST_RUNNER_DIR"])


def _mark(name: str) -> int:
    path = _dir() / f"{name}.count"
    with path.open("a") as f:
        f.write("x")
    return len(path.read_text())


@step
def load(n: int) -> list[int]:
    _mark("load")
    print(f"loading {n} values")
    return list(range(n))


@step
def double(values: list[int]) -> list[int]:
    _mark("double")
    return [scale(v) for v in values]


@step
def total(values: list[int]) -> int:
    _mark("total")
    return sum(values)


@pipeline
def simple(n: int = 3) -> None:
    total(double(load(n)))


@step(cache=False)
def side(values: list[int]) -> int:
    _mark("side")
    return len(values)


@step
def boom(values: list[int]) -> int:
    _mark("boom")
    if (_dir() / "fail").exists():
        raise ValueError("boom: the values are bad")
    return sum(values)


@step
def after(x: int, y: int) -> int:
    _mark("after")
    return x + y


@pipeline
def fragile(n: int = 3) -> None:
    values = load(n)
    counted = side(values)
    after(boom(values), counted)


@step
def weird(n: int) -> Any:
    _mark("weird")
    return {n, n + 1}


@pipeline
def bad_output(n: int = 1) -> None:
    total(weird(n))


@step(ignore_inputs=("note",))
def noted(n: int, note: str) -> int:
    _mark("noted")
    return n


@pipeline
def with_note(note: str = "a") -> None:
    noted(2, note)


@pipeline
def uncached() -> None:
    side(load(2))


@step(expire=60)
def fresh(n: int) -> int:
    _mark("fresh")
    return n


@pipeline
def expiring() -> None:
    fresh(1)


@step
def meet(me: str, other: str) -> list[float]:
    """Write when it started, wait until ``other`` has started too, write when it ended."""
    started = time.time()
    (_dir() / f"{me}.started").write_text(repr(started))
    deadline = time.monotonic() + 60
    while not (_dir() / f"{other}.started").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never started while {me} was running")
        time.sleep(0.01)
    ended = time.time()
    (_dir() / f"{me}.ended").write_text(repr(ended))
    return [started, ended]


@pipeline
def pair() -> None:
    meet("a", "b")
    meet("b", "a")


@step(retries=2, retry_backoff=0.01)
def flaky(n: int) -> int:
    count = _mark("flaky")
    if count < 3:
        raise RuntimeError(f"flaky: attempt {count} fails")
    return n


@pipeline
def shaky() -> None:
    flaky(5)


@step(timeout=2)
def sleepy(n: int) -> int:
    _mark("sleepy")
    time.sleep(60)
    return n


@pipeline
def sleeper() -> None:
    sleepy(1)


@step(timeout=0.001)
def slowish(n: int) -> int:
    time.sleep(0.05)
    return n


@pipeline
def slow_local() -> None:
    slowish(1)


@step
def gated(n: int) -> int:
    """Wait until the test writes ``go``."""
    _mark("gated")
    deadline = time.monotonic() + 60
    while not (_dir() / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said go")
        time.sleep(0.01)
    return n


@step
def combine(values: list[int]) -> int:
    return sum(values)


@pipeline
def combined() -> None:
    combine([total(load(1)), total(load(2))])
