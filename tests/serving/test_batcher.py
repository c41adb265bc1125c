"""The batcher alone: coalescing, order, isolation of a bad request, overload, timeouts, drain."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from mloop.errors import InvalidInput, Overloaded, ServiceUnavailable
from mloop.serving.batcher import Batcher, Outcome, Pending, run_isolated
from mloop.serving.protocols.common import ParsedInput


def item(value: float, rows: int = 1) -> ParsedInput:
    return ParsedInput(columns={"x": [value] * rows}, array=None, n_rows=rows)


class Model:
    """Doubles x; refuses negative values; records every batch it was called with."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[int] = []
        self.delay = delay

    def run_all(self, batch: list[Pending]) -> list[Outcome]:
        time.sleep(self.delay)
        values = [v for p in batch for v in p.item.columns["x"]]  # type: ignore[index]
        if any(v < 0 for v in values):
            raise InvalidInput("x must not be negative", field="x")
        self.batches.append(len(values))
        out, start = [], 0
        for p in batch:
            end = start + p.item.n_rows
            out.append(Outcome(np.asarray(values[start:end]) * 2, None))
            start = end
        return out

    def batcher(self, **kw: float) -> Batcher:
        options = {"max_batch_size": 8, "max_latency_ms": 5.0, "max_queue_rows": 1000, **kw}
        return Batcher(
            lambda b: run_isolated(self.run_all, b),
            max_batch_size=int(options["max_batch_size"]),
            max_latency_ms=options["max_latency_ms"],
            max_queue_rows=int(options["max_queue_rows"]),
        )


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_concurrent_requests_share_batches_and_keep_order() -> None:
    model = Model(delay=0.01)

    async def main() -> list[Outcome]:
        batcher = model.batcher()
        batcher.start()
        outcomes = await asyncio.gather(
            *(batcher.submit(item(float(i)), str(i), 0, "primary") for i in range(40))
        )
        await batcher.close()
        return list(outcomes)

    outcomes = run(main())
    assert [float(o.predictions[0]) for o in outcomes] == [2.0 * i for i in range(40)]  # type: ignore[union-attr]
    assert max(model.batches) == 8 and len(model.batches) < 40


def test_a_bad_request_fails_alone() -> None:
    model = Model(delay=0.01)

    async def main() -> list[object]:
        batcher = model.batcher()
        batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(item(v), "r", 0, "primary") for v in (1.0, -1.0, 2.0, 3.0)),
            return_exceptions=True,
        )
        await batcher.close()
        return list(results)

    good1, bad, good2, good3 = run(main())  # type: ignore[misc]
    assert isinstance(bad, InvalidInput)
    assert [float(g.predictions[0]) for g in (good1, good2, good3)] == [2.0, 4.0, 6.0]


def test_overload_is_refused_at_once() -> None:
    model = Model(delay=0.2)

    async def main() -> list[object]:
        batcher = model.batcher(max_queue_rows=3, max_batch_size=1)
        batcher.start()
        tasks = [
            asyncio.ensure_future(batcher.submit(item(1.0), str(i), 0, "primary")) for i in range(6)
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.close()
        return list(results)

    results = run(main())
    refused = [r for r in results if isinstance(r, Overloaded)]  # type: ignore[union-attr]
    assert refused and refused[0].details["retry_after"] == 1
    assert any(isinstance(r, Outcome) for r in results)  # type: ignore[union-attr]


def test_a_request_that_times_out_leaves_the_queue() -> None:
    model = Model(delay=0.1)

    async def main() -> tuple[bool, Outcome]:
        batcher = model.batcher(max_batch_size=1)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(item(1.0), "a", 0, "primary"))
        await asyncio.sleep(0.01)  # "a" is with the model now
        timed_out = False
        try:
            async with asyncio.timeout(0.02):
                await batcher.submit(item(2.0), "b", 0, "primary")
        except TimeoutError:
            timed_out = True
        result = await first
        await batcher.close()
        return timed_out, result

    timed_out, result = run(main())  # type: ignore[misc]
    assert timed_out and float(result.predictions[0]) == 2.0
    assert model.batches == [1]  # the timed-out request was never predicted


def test_close_drains_then_refuses() -> None:
    model = Model(delay=0.02)

    async def main() -> tuple[list[Outcome], BaseException | None]:
        batcher = model.batcher(max_batch_size=2)
        batcher.start()
        tasks = [
            asyncio.ensure_future(batcher.submit(item(1.0), str(i), 0, "primary")) for i in range(6)
        ]
        await asyncio.sleep(0)
        await batcher.close()
        done = [t.result() for t in tasks]
        try:
            await batcher.submit(item(1.0), "late", 0, "primary")
        except ServiceUnavailable as exc:
            return done, exc
        return done, None

    done, refused = run(main())  # type: ignore[misc]
    assert len(done) == 6 and isinstance(refused, ServiceUnavailable)


def test_model_failure_fails_the_whole_batch_with_the_error() -> None:
    def broken(batch: list[Pending]) -> list[Outcome]:
        raise RuntimeError("boom")

    async def main() -> list[object]:
        batcher = Batcher(
            lambda b: run_isolated(broken, b), max_batch_size=4, max_latency_ms=1,
            max_queue_rows=100,
        )  # fmt: skip
        batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(item(1.0), str(i), 0, "primary") for i in range(3)),
            return_exceptions=True,
        )
        await batcher.close()
        return list(results)

    results = run(main())
    assert all(isinstance(r, RuntimeError) for r in results)  # type: ignore[union-attr]


@pytest.mark.parametrize("rows", [20])
def test_a_request_larger_than_a_batch_runs_alone(rows: int) -> None:
    model = Model()

    async def main() -> Outcome:
        batcher = model.batcher(max_batch_size=8)
        batcher.start()
        outcome = await batcher.submit(item(1.0, rows), "big", 0, "primary")
        await batcher.close()
        return outcome

    assert len(run(main()).predictions) == rows  # type: ignore[union-attr]
