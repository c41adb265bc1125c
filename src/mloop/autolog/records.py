"""What every library's handler records the same way: params, metric histories, the training
data's digest (and dataset version), and the packaged model."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mloop.autolog.session import FitContext, system_tags

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "TAG_PREFIX",
    "flat_params",
    "input_example",
    "log_data",
    "log_histories",
    "log_model",
    "log_params",
    "metric_key",
    "training_table",
]

#: Tags that autologging sets start with this.
TAG_PREFIX: Final = "mloop.autolog"
#: Param values are cut to this many characters (the store's limit is 6,000), as MLflow does.
MAX_PARAM_CHARS: Final = 6_000
_BAD_KEY_CHARS = re.compile(r"[^\w\-./ ]")
_BAD_DATASET_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def _text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int) or value is None:
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        text = str(value)  # a NumPy scalar: "0.1", not "np.float64(0.1)"
    elif callable(value) and not hasattr(value, "get_params"):
        text = _name(value)  # a function or class: its name, not its address
    else:
        text = repr(value)
    text = text.replace("\x00", "")
    if len(text) > MAX_PARAM_CHARS:
        text = text[: MAX_PARAM_CHARS - 3] + "..."
    return text


def _name(value: Any) -> str:
    return str(getattr(value, "__qualname__", None) or type(value).__qualname__)


def metric_key(key: str) -> str:
    """A metric or param key made valid: characters outside ``\\w-./ `` become ``_``."""
    cleaned = _BAD_KEY_CHARS.sub("_", str(key)).strip().lstrip("/") or "_"
    return cleaned[:250]


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Params as text: nested mappings flattened with ``.``, values stringified and cut."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = metric_key(f"{prefix}{key}")
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, f"{name}."))
        else:
            flat[name] = _text(value)
    return flat


def log_params(context: FitContext, params: Mapping[str, Any]) -> None:
    """Log params on the fit's run (a value conflicting with an earlier one is reported)."""
    flat = flat_params(params)
    if flat:
        context.run.log_params(flat)


def log_histories(context: FitContext, results: Mapping[str, Mapping[str, Iterable[Any]]]) -> None:
    """Log per-iteration evaluation results (``{data: {metric: [v0, v1, ...]}}``) as metric
    histories ``<data>-<metric>`` with the iteration as the step."""
    points: list[tuple[str, float, int]] = []
    for data_name, per_metric in results.items():
        for metric, values in per_metric.items():
            key = metric_key(f"{data_name}-{metric}")
            for step, entry in enumerate(values):
                # (mean, std) pairs come from cross-validation: keep the mean
                value = entry[0] if isinstance(entry, tuple | list) else entry
                try:
                    points.append((key, float(value), step))
                except (TypeError, ValueError):
                    continue
    if points:
        context.run.log_batch(points)


def _column_names(count: int, prefix: str) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


def _as_columns(data: Any, prefix: str) -> tuple[list[str], list[Any]] | None:
    import numpy as np
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return list(data.column_names), list(data.columns)
    if type(data).__module__.startswith("pandas"):
        if hasattr(data, "columns"):
            from mloop.data.frames import as_table

            table = as_table(data)
            return list(table.column_names), list(table.columns)
        name = getattr(data, "name", None)
        return [str(name) if name is not None else prefix.rstrip("_")], [pa.array(data)]
    if type(data).__module__.startswith("scipy"):
        return None  # sparse: hashing would densify it
    if not isinstance(data, np.ndarray):
        if not isinstance(data, list | tuple):
            return None
        data = np.asarray(data)
    if data.ndim == 1:
        return [prefix.rstrip("_")], [pa.array(data)]
    if data.ndim != 2:
        return None
    width = data.shape[1]
    return _column_names(width, prefix), [pa.array(data[:, i]) for i in range(width)]


def training_table(x: Any, y: Any = None) -> pa.Table | None:
    """The training data (features, then the target) as one Arrow table, or None when it is
    of a kind that is not hashed (sparse matrices, a library's own data containers)."""
    import pyarrow as pa

    features = _as_columns(x, "x")
    if features is None:
        return None
    names, columns = features
    if y is not None:
        target = _as_columns(y, "target_" if getattr(y, "ndim", 1) == 2 else "target")
        if target is None:
            return None
        for name, column in zip(*target, strict=True):
            unique = name
            while unique in names:
                unique = f"_{unique}"
            names.append(unique)
            columns.append(column)
    return pa.Table.from_arrays(columns, names=names)


def _dataset_name(context: FitContext, model_name: str) -> str:
    config = context.config
    base = config.dataset_name or f"{config.register_as or model_name}-train"
    name = _BAD_DATASET_CHARS.sub("-", base).lstrip("._-")[:128]
    return name or "autolog-train"


def log_data(
    context: FitContext,
    x: Any,
    y: Any,
    model_name: str,
    *,
    rows: int | None = None,
    columns: int | None = None,
) -> None:
    """Tag the run with the training data's digest, rows and columns; register the data as a
    dataset version (and an input of the run) when ``log_datasets="register"``."""
    config = context.config
    if not config.log_datasets:
        return
    table = training_table(x, y) if x is not None else None
    tags: dict[str, Any] = {}
    if table is not None:
        from mloop.data.digest import table_digest

        tags[f"{TAG_PREFIX}.train_digest"] = table_digest(table)
        rows = table.num_rows
        if columns is None:
            columns = table.num_columns - (0 if y is None else _width(y))
    if rows is not None:
        tags[f"{TAG_PREFIX}.train_rows"] = rows
    if columns is not None:
        tags[f"{TAG_PREFIX}.train_columns"] = columns
    system_tags(context.run, tags)
    if config.log_datasets == "register" and table is not None:
        from mloop.data.versions import register

        client = context.run.client
        version = register(_dataset_name(context, model_name), table, run=None, client=client)
        context.run.log_input(version, "training")
        system_tags(context.run, {f"{TAG_PREFIX}.train_dataset": version.ref})


def _width(y: Any) -> int:
    shape = getattr(y, "shape", None)
    if shape is not None and len(shape) == 2:
        return int(shape[1])
    return 1


def input_example(x: Any, rows: int = 5) -> Any:
    """The first rows of the training data, to infer the signature from (None if unsuitable)."""
    import numpy as np

    if type(x).__module__.startswith("pandas") and hasattr(x, "head"):
        return x.head(rows)
    if isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.kind in "biuf":
        return x[:rows]
    return None


def log_model(context: FitContext, model: Any, example: Any = None) -> None:
    """Package the fitted model: registered as ``register_as`` (through ``run.log_model``), or
    else kept as run artifacts under ``model/``."""
    config = context.config
    if not config.log_models:
        return
    run = context.run
    if config.register_as is not None:
        try:
            version = run.log_model(model, config.register_as, input_example=example)
        except Exception:
            if example is None:
                raise
            version = run.log_model(model, config.register_as)
        system_tags(run, {f"{TAG_PREFIX}.model": version.uri})
        return
    from mloop.models import save_model

    with tempfile.TemporaryDirectory(prefix="mloop-autolog-") as scratch:
        folder = Path(scratch) / "model"
        try:
            save_model(model, folder, input_example=example)
        except Exception:
            if example is None:
                raise
            save_model(model, folder)
        run.log_artifacts(folder, "model")
