"""Fixtures for the CLI tests: a runner, and a store with a few runs in it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mloop.cli.main import cli

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(mloop_home: Path) -> Invoke:
    """Run ``mloop`` in-process with a wide terminal; returns click's Result."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(
            cli, list(args), env={"COLUMNS": "240", **(env or {})}, catch_exceptions=True
        )

    return run


@dataclass
class Populated:
    """Ids of what the ``populated`` fixture logged."""

    experiment: str
    parent: str
    children: list[str]
    other: str


@pytest.fixture
def populated(mloop_home: Path, tmp_path: Path) -> Iterator[Populated]:
    """An experiment with a parent run and two children (params, metric curves, artifacts),
    and a second experiment with one run."""
    import mloop

    client = mloop.TrackingClient()
    try:
        with client.start_run("exp-a", "parent", tags={"team": "vision"}) as parent:
            parent.log_param("sweep", "lr")
            child_ids = []
            for i, lr in enumerate((0.1, 0.01)):
                with client.start_run(
                    "exp-a", f"child-{i}", parent=parent.id, tags={"family": "sgd"}
                ) as child:
                    child.log_params({"lr": lr, "epochs": 5})
                    for step in range(5):
                        child.log_metric("loss", 1.0 / (step + 1 + i), step=step)
                    child.log_metric("acc", 0.9 + i * 0.05)
                    child.log_text(f"report {i}\n", "reports/summary.txt")
                    child.log_dict({"lr": lr}, "config.json")
                    child_ids.append(child.id)
            parent.log_metric("best_acc", 0.95)
        with client.start_run("exp-b", "lonely") as other:
            other.log_metric("acc", 0.5)
        client.flush()
        yield Populated("exp-a", parent.id, child_ids, other.id)
    finally:
        client.close()
