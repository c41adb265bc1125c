"""mloop side of the serving benchmark: train the model and register it in a fresh mloop home.

Runs in mloop's environment with ``MLOOP_HOME`` set by the orchestrator (serving.py), which then
serves ``bench-hgb@champion`` with ``mloop serve``.
"""

from __future__ import annotations

import time
from typing import Any

from _common import worker_main
from _serving_workload import ALIAS, MODEL_NAME, input_example, train


def prepare(spec: dict[str, Any]) -> dict[str, Any]:
    """Train the model, log and register it under a tracked run, and point the alias at it."""
    import mloop
    from mloop import registry

    t0 = time.perf_counter()
    model = train()
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    client = mloop.TrackingClient()
    with client.start_run(experiment="serving-bench", run_name="train") as run:
        version = registry.log_model(
            run, model, MODEL_NAME, input_example=input_example(), client=client
        )
    registry.set_alias(MODEL_NAME, ALIAS, version.version, client=client)
    client.close()
    return {
        "model_uri": f"{MODEL_NAME}@{ALIAS}",
        "version": version.version,
        "train_seconds": train_seconds,
        "save_seconds": time.perf_counter() - t0,
    }


def count_log(spec: dict[str, Any]) -> dict[str, Any]:
    """Rows in the deployment's prediction log (read after the servers stopped)."""
    from mloop.serving.predlog_read import read_predictions

    table = read_predictions(spec["deployment"])
    return {"rows": table.num_rows}


if __name__ == "__main__":
    worker_main({"prepare": prepare, "count_log": count_log})
