"""mloop side of the registry benchmark. Runs in mloop's environment, in one process.

The orchestrator (registry.py) gives the worker a fresh folder with a SQLite store and an
artifact folder. Before any timer: N models are packaged with ``mloop.models.save_model`` (with
an input example) into folders, a source run is created, and one warm-up package goes through
every timed call once. The log_model phase packages, stores and registers in its timed call.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from _common import maybe_profile, progress, worker_main
from _registry_workload import (
    ALIAS,
    EXPERIMENT,
    MODEL_NAME,
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


def _profile(spec: dict[str, Any], phase: str) -> str | None:
    folder = spec.get("profile_dir")
    return None if folder is None else str(Path(folder) / f"profile-registry-{phase}.txt")


def run_all(spec: dict[str, Any]) -> dict[str, Any]:
    """Register N versions, move an alias, resolve it, download it, log models; each timed."""
    import mloop
    from mloop import registry
    from mloop.models import save_model

    sizes = sizes_from(spec)
    workdir = Path(spec["workdir"])
    client = mloop.TrackingClient(
        tracking_uri=f"sqlite:///{workdir / 'mloop.db'}",
        artifact_uri=str(workdir / "artifacts"),
    )
    t0 = perf()
    x, y = training_data()
    example = input_example(x)
    packages = workdir / "packages"
    save_model(train(0, x, y), packages / "warmup", input_example=example)
    folders = []
    for i in range(sizes.versions):
        folder = packages / f"model-{i}"
        save_model(train(i, x, y), folder, input_example=example)
        folders.append(folder)
        if (i + 1) % 50 == 0:
            progress(f"mloop: packaged {i + 1}/{sizes.versions} models (untimed)")
    with client.start_run(experiment=EXPERIMENT, run_name="train") as run:
        run_id = run.id
    setup_seconds = perf() - t0

    # Warm-up: every timed call once, on another model name.
    registry.register(packages / "warmup", WARMUP_NAME, run=run_id, client=client)
    registry.set_alias(WARMUP_NAME, ALIAS, 1, client=client)
    registry.resolve(f"models:/{WARMUP_NAME}@{ALIAS}", client=client)
    registry.download(f"models:/{WARMUP_NAME}@{ALIAS}", workdir / "dl-warmup", client=client)

    out: dict[str, Any] = {"setup_seconds": setup_seconds}

    times = []
    with maybe_profile(_profile(spec, "register")):
        for folder in folders:
            t0 = perf()
            registry.register(folder, MODEL_NAME, run=run_id, client=client)
            times.append(perf() - t0)
    out["register"] = {**timings(times), "verb": "mloop.registry.register(folder, name)"}
    progress(f"mloop register: {out['register']['rate']:.1f}/s")

    times = []
    with maybe_profile(_profile(spec, "alias")):
        for i in range(sizes.alias_moves):
            version = alias_target(i, sizes.versions)
            t0 = perf()
            registry.set_alias(MODEL_NAME, ALIAS, version, client=client)
            times.append(perf() - t0)
    out["alias"] = {**timings(times), "verb": "mloop.registry.set_alias"}
    progress(f"mloop alias: {out['alias']['rate']:.1f}/s")

    times = []
    found = None
    model_uri = f"models:/{MODEL_NAME}@{ALIAS}"
    with maybe_profile(_profile(spec, "resolve")):
        for _ in range(sizes.resolves):
            t0 = perf()
            found = registry.resolve(model_uri, client=client)
            times.append(perf() - t0)
    out["resolve"] = {
        **timings(times),
        "verb": "mloop.registry.resolve('models:/name@alias')",
        "resolved_version": found.version if found else None,
    }
    progress(f"mloop resolve: {out['resolve']['rate']:.1f}/s")

    times = []
    dest = workdir / "dl-0"
    with maybe_profile(_profile(spec, "download")):
        for i in range(sizes.downloads):
            dest = workdir / f"dl-{i}"
            t0 = perf()
            registry.download(model_uri, dest, client=client)
            times.append(perf() - t0)
    out["download"] = {
        **timings(times),
        "verb": "mloop.registry.download('models:/name@alias', folder)",
        **folder_summary(dest),
    }
    progress(f"mloop download: {out['download']['rate']:.1f}/s")

    # log_model: package, store and register in one call (models trained before the timer).
    models = [train(i, x, y) for i in range(sizes.logged_models)]
    with client.start_run(experiment=EXPERIMENT, run_name="log-warmup") as run:
        registry.log_model(run, models[0], WARMUP_NAME, input_example=example, client=client)
    times = []
    with maybe_profile(_profile(spec, "log_model")):
        for i, model in enumerate(models):
            # One run per model, as in training; starting and ending it is not timed.
            with client.start_run(experiment=EXPERIMENT, run_name=f"log-{i}") as run:
                t0 = perf()
                registry.log_model(
                    run, model, MODEL_NAME_LOGGED, input_example=example, client=client
                )
                times.append(perf() - t0)
    out["log_model"] = {**timings(times), "verb": "mloop.registry.log_model(run, model, name)"}
    progress(f"mloop log_model: {out['log_model']['rate']:.1f}/s")
    client.close()
    return out


if __name__ == "__main__":
    worker_main({"all": run_all})
