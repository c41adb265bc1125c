"""``mloop sweep``: search a pipeline's or a step's parameters with Optuna, trials as child runs.

The target is named ``module:attribute`` as for ``mloop pipelines run``; the command calls
:func:`mloop.pipelines.sweep.sweep`, the same function a Python user calls.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import click
from rich.table import Table

from mloop.cli.pipelines import cwd_on_path, parse_params
from mloop.cli.render import emit_json, out, short_id
from mloop.cli.session import CliSession, json_option, pass_session
from mloop.errors import InvalidInput, MloopError, NotFound

__all__ = ["load_target", "parse_space_option", "sweep"]


def load_target(ref: str) -> Any:
    """Import ``module:attribute`` and return the pipeline or step it names."""
    from mloop.pipelines import Pipeline, Step

    module_name, sep, attribute = ref.partition(":")
    if not sep or not module_name or not attribute:
        raise InvalidInput(f"target {ref!r} is not MODULE:NAME (e.g. flows.training:training)")
    cwd_on_path()
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotFound(f"cannot import module {module_name!r} for {ref!r}: {exc}") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise NotFound(f"module {module_name!r} has no {attribute!r} ({ref!r})")
        target = getattr(target, part)
    if not isinstance(target, (Pipeline, Step)):
        raise InvalidInput(
            f"{ref!r} is a {type(target).__name__}, not an @mloop.pipeline or an @mloop.step"
        )
    return target


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _bound(option: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(f"--space {option!r}: {raw!r} is not a number") from None


def parse_space_option(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``NAME=int:LOW:HIGH[:log]``, ``NAME=float:LOW:HIGH[:log]``, ``NAME=cat:A,B,...``."""
    space: dict[str, Any] = {}
    for pair in pairs:
        name, sep, spec = pair.partition("=")
        kind, _, rest = spec.partition(":")
        if not sep or not name or not rest:
            raise InvalidInput(
                f"--space {pair!r} is not NAME=int:LOW:HIGH, NAME=float:LOW:HIGH[:log] or "
                "NAME=cat:A,B (e.g. --space depth=int:2:8)"
            )
        if name in space:
            raise InvalidInput(f"--space {name!r} is given twice")
        if kind in ("cat", "categorical"):
            space[name] = {"type": "categorical", "choices": [_value(c) for c in rest.split(",")]}
            continue
        if kind not in ("int", "float"):
            raise InvalidInput(f"--space {pair!r}: type {kind!r} is not int, float or cat")
        parts = rest.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise InvalidInput(f"--space {pair!r}: give {kind}:LOW:HIGH or {kind}:LOW:HIGH:log")
        low, high = _bound(pair, parts[0]), _bound(pair, parts[1])
        if kind == "int" and (low != int(low) or high != int(high)):
            raise InvalidInput(f"--space {pair!r}: int bounds must be whole numbers")
        bounds: tuple[Any, Any] = (int(low), int(high)) if kind == "int" else (low, high)
        space[name] = {"type": kind, "low": bounds[0], "high": bounds[1], "log": len(parts) == 3}
    return space


@click.command("sweep")
@click.argument("ref", metavar="MODULE:TARGET")
@click.option(
    "--space", "space", multiple=True, required=True, metavar="NAME=SPEC",
    help="A searched param: NAME=int:LOW:HIGH, NAME=float:LOW:HIGH[:log], NAME=cat:A,B.",
)  # fmt: skip
@click.option(
    "--trials", type=click.IntRange(min=1), default=20, show_default=True,
    help="How many trials to run.",
)  # fmt: skip
@click.option("--metric", required=True, help="NODE or NODE.KEY (a step target: KEY).")
@click.option(
    "--direction", type=click.Choice(["maximize", "minimize"]), default="maximize",
    show_default=True, help="Whether a larger metric is better.",
)  # fmt: skip
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A fixed param.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Trials at once.")  # fmt: skip
@click.option(
    "--trial-executor", type=click.Choice(["thread", "process", "ray"]), default="thread",
    show_default=True,
    help="Where whole trials run: threads of this process, worker processes, or Ray tasks.",
)  # fmt: skip
@click.option(
    "--executor", type=click.Choice(["local", "process", "ray"]), default="local",
    show_default=True, help="Where a pipeline's steps run within a trial.",
)  # fmt: skip
@click.option("--register-as", default=None, metavar="MODEL",
              help="Register the best trial's model as a candidate version of MODEL.")  # fmt: skip
@json_option
@pass_session
def sweep(
    session: CliSession,
    *,
    ref: str,
    space: tuple[str, ...],
    trials: int,
    metric: str,
    direction: str,
    params: tuple[str, ...],
    workers: int,
    trial_executor: str,
    executor: str,
    register_as: str | None,
    as_json: bool,
) -> None:
    """Search a pipeline's or step's params with Optuna; every trial is a child run.

    \b
    Examples:
      mloop sweep flows.training:training --space depth=int:2:8 \\
          --space lr=float:1e-3:1e-1:log --trials 20 --metric evaluate.roc_auc
      mloop sweep flows.training:training --space kind=cat:a,b --metric evaluate.loss \\
          --direction minimize --workers 2 --register-as churn
      mloop sweep flows.training:training --space depth=int:2:8 --metric evaluate.roc_auc \\
          --workers 4 --trial-executor process
    """
    from mloop.pipelines.sweep import sweep as run_sweep

    target = load_target(ref)
    result = run_sweep(
        target, parse_space_option(space), n_trials=trials, metric=metric, direction=direction,
        params=parse_params(params), executor=executor, max_workers=workers,
        trial_executor=trial_executor, register_as=register_as, client=session.client,
    )  # fmt: skip
    rows: list[dict[str, Any]] = [
        {"number": t.number, "state": t.state, "value": t.value, "params": t.params,
         "run_id": t.run_id, "pipeline_run_id": t.pipeline_run_id, "error": t.error}
        for t in result.trials
    ]  # fmt: skip
    registered = result.registered
    if as_json:
        emit_json(
            {
                "run_id": result.run_id,
                "study": result.study_name,
                "metric": metric,
                "direction": direction,
                "best": None if result.best is None else result.best.number,
                "best_value": result.best_value,
                "best_params": result.best_params,
                "registered": None
                if registered is None
                else {"model": registered.model, "version": registered.version},
                "trials": rows,
            }
        )
    else:
        table = Table(title=f"Sweep run {short_id(result.run_id)}", title_justify="left")
        for column in ("trial", "state", metric, "params", "run"):
            table.add_column(column)
        for row in rows:
            value = "-" if row["value"] is None else f"{row['value']:.6g}"
            table.add_row(
                str(row["number"]), row["state"], value,
                ", ".join(f"{k}={v}" for k, v in row["params"].items()), short_id(row["run_id"]),
            )  # fmt: skip
        console = out()
        console.print(table)
        if result.best is not None:
            console.print(
                f"best: trial {result.best.number}, {metric}={result.best_value:.6g} "
                f"({', '.join(f'{k}={v}' for k, v in result.best_params.items())})"
            )
        if registered is not None:
            console.print(f"registered {registered.model} version {registered.version}")
    if result.best is None:
        raise MloopError(
            f"no trial of sweep run {result.run_id} completed; see the trial runs "
            f"(mloop runs list) for their errors"
        )
