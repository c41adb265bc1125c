"""MLflow side of the registry benchmark. Runs in MLflow's own virtualenv, in one process.

The orchestrator (registry.py) sets MLFLOW_TRACKING_URI to a ``sqlite:///`` file in a fresh
folder; the model registry uses the same database. Before any timer: the store is created
(MLflow's Alembic migrations), N models are logged in one run (``mlflow.sklearn.log_model`` with
an input example), and one warm-up model goes through every timed call once. Every registry call
against the SQL store commits before it returns. The log_model phase logs (packages and stores)
and registers in its timed call.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path
from typing import Any

from _common import progress, worker_main
from _registry_workload import (
    ALIAS,
    EXPERIMENT,
    MODEL_NAME,
    MODEL_NAME_FLUENT,
    MODEL_NAME_LOGGED,
    WARMUP_NAME,
    alias_target,
    folder_summary,
    input_example,
    sizes_from,
    timings,
    train,
    training_data,
)

perf = time.perf_counter


def _wal_pragmas() -> None:
    """Give MLflow's SQLite connections mloop's settings (WAL, synchronous=NORMAL)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()


def _log_models(mlflow: Any, exp_id: str, count: int) -> tuple[str, list[Any], Any]:
    """Log the warm-up model and ``count`` models in one run; untimed."""
    import sklearn

    x, y = training_data()
    example = input_example(x)
    # Given requirements spare MLflow its subprocess that infers them (seconds per model).
    kwargs = {
        "input_example": example,
        "pip_requirements": [f"scikit-learn=={sklearn.__version__}"],
    }
    infos = []
    with mlflow.start_run(experiment_id=exp_id, run_name="train") as run:
        warm = mlflow.sklearn.log_model(train(0, x, y), name="warmup", **kwargs)
        for i in range(count):
            infos.append(mlflow.sklearn.log_model(train(i, x, y), name=f"model-{i}", **kwargs))
            if (i + 1) % 50 == 0:
                progress(f"mlflow: logged {i + 1}/{count} models (untimed)")
    return run.info.run_id, infos, warm, kwargs


def run_all(spec: dict[str, Any]) -> dict[str, Any]:
    """Register N versions, move an alias, resolve it, download it, log models; each timed."""
    uri = os.environ["MLFLOW_TRACKING_URI"]
    if not uri.startswith("sqlite:///"):
        raise SystemExit(f"MLFLOW_TRACKING_URI must be sqlite:///..., got {uri}")
    if spec.get("mlflow_wal"):
        _wal_pragmas()
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    sizes = sizes_from(spec)
    workdir = Path(spec["workdir"])
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    exp_id = client.create_experiment(EXPERIMENT, (workdir / "mlartifacts").as_uri())
    t0 = perf()
    run_id, infos, warm, log_kwargs = _log_models(mlflow, exp_id, sizes.versions)
    setup_seconds = perf() - t0

    # Warm-up: every timed call once, on another model name.
    client.create_registered_model(WARMUP_NAME)
    client.create_model_version(WARMUP_NAME, warm.model_uri, run_id=run_id, model_id=warm.model_id)
    with contextlib.redirect_stderr(io.StringIO()):
        mlflow.register_model(warm.model_uri, WARMUP_NAME)
    client.set_registered_model_alias(WARMUP_NAME, ALIAS, "1")
    client.get_model_version_by_alias(WARMUP_NAME, ALIAS)
    mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{WARMUP_NAME}@{ALIAS}", dst_path=str(workdir / "dl-warmup")
    )

    out: dict[str, Any] = {"setup_seconds": setup_seconds}

    # register: MlflowClient.create_model_version of an already-logged model. MLflow creates no
    # registered model on first use here; that row is created untimed, as mloop's register
    # creates it inside its first (timed) call.
    client.create_registered_model(MODEL_NAME)
    times = []
    for info in infos:
        t0 = perf()
        client.create_model_version(
            MODEL_NAME, info.model_uri, run_id=run_id, model_id=info.model_id
        )
        times.append(perf() - t0)
    out["register"] = {**timings(times), "verb": "MlflowClient.create_model_version"}
    progress(f"mlflow register: {out['register']['rate']:.1f}/s")

    # The same logged models again through the fluent mlflow.register_model (creates the
    # registered model on first use, tags the logged model with its versions).
    times = []
    sink = io.StringIO()  # register_model prints two lines per call to stderr
    with contextlib.redirect_stderr(sink):
        for info in infos:
            t0 = perf()
            mlflow.register_model(info.model_uri, MODEL_NAME_FLUENT)
            times.append(perf() - t0)
            sink.seek(0)
            sink.truncate()
    out["register_fluent"] = {**timings(times), "verb": "mlflow.register_model"}
    progress(f"mlflow register_model: {out['register_fluent']['rate']:.1f}/s")

    times = []
    for i in range(sizes.alias_moves):
        version = str(alias_target(i, sizes.versions))
        t0 = perf()
        client.set_registered_model_alias(MODEL_NAME, ALIAS, version)
        times.append(perf() - t0)
    out["alias"] = {**timings(times), "verb": "MlflowClient.set_registered_model_alias"}
    progress(f"mlflow alias: {out['alias']['rate']:.1f}/s")

    times = []
    found = None
    for _ in range(sizes.resolves):
        t0 = perf()
        found = client.get_model_version_by_alias(MODEL_NAME, ALIAS)
        times.append(perf() - t0)
    out["resolve"] = {
        **timings(times),
        "verb": "MlflowClient.get_model_version_by_alias",
        "resolved_version": int(found.version) if found else None,
    }
    progress(f"mlflow resolve: {out['resolve']['rate']:.1f}/s")

    times = []
    model_uri = f"models:/{MODEL_NAME}@{ALIAS}"
    dest = workdir / "dl-0"
    for i in range(sizes.downloads):
        dest = workdir / f"dl-{i}"
        t0 = perf()
        mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dest))
        times.append(perf() - t0)
    out["download"] = {
        **timings(times),
        "verb": "mlflow.artifacts.download_artifacts('models:/name@alias')",
        **folder_summary(dest),
    }
    progress(f"mlflow download: {out['download']['rate']:.1f}/s")

    # log_model: package, store and register in one call (models trained before the timer).
    x, y = training_data()
    models = [train(i, x, y) for i in range(sizes.logged_models)]
    times = []
    with contextlib.redirect_stderr(sink):
        with mlflow.start_run(experiment_id=exp_id, run_name="log-warmup"):
            mlflow.sklearn.log_model(
                models[0], name="model", registered_model_name=WARMUP_NAME, **log_kwargs
            )
        for i, model in enumerate(models):
            # One run per model, as in training; starting and ending it is not timed.
            with mlflow.start_run(experiment_id=exp_id, run_name=f"log-{i}"):
                t0 = perf()
                mlflow.sklearn.log_model(
                    model, name="model", registered_model_name=MODEL_NAME_LOGGED, **log_kwargs
                )
                times.append(perf() - t0)
            sink.seek(0)
            sink.truncate()
    out["log_model"] = {
        **timings(times),
        "verb": "mlflow.sklearn.log_model(..., registered_model_name=...)",
    }
    progress(f"mlflow log_model: {out['log_model']['rate']:.1f}/s")
    return out


if __name__ == "__main__":
    worker_main({"all": run_all})
