"""Autologging: record scikit-learn, XGBoost and LightGBM training without logging calls.

::

    import mloop

    mloop.autolog()                                   # or autolog(register_as="fraud")
    LogisticRegression(C=0.5).fit(X, y)               # one run: params, training metrics,
                                                      # the data's digest, the packaged model

A fit with no active run starts one and ends it (FINISHED, or FAILED when the fit raises — the
exception propagates unchanged); inside ``with mloop.start_run():`` it logs into that run and
leaves it open. Nested fits (a Pipeline's steps, a search's candidates) log once, at the
outermost call. Nothing autologging does can break a fit: a failure is reported once as an
:class:`AutologWarning` and the fit goes on. ``mloop.autolog(disable=True)`` puts every
original method back. See docs/autolog.md.

The module itself is callable, so ``mloop.autolog(...)`` works whether ``mloop.autolog`` is
bound to this module or to the function.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

from mloop.autolog.patches import Patch, inside_autolog, restore
from mloop.autolog.session import AutologConfig, AutologWarning, current_config, set_config
from mloop.errors import InvalidInput

__all__ = [
    "LIBRARIES",
    "AutologConfig",
    "AutologWarning",
    "autolog",
    "current_config",
    "inside_autolog",
    "patched_libraries",
]

#: The libraries autologging knows, by import name -> the module that patches them.
LIBRARIES: Final = {
    "sklearn": "mloop.autolog.sklearn",
    "xgboost": "mloop.autolog.xgboost",
    "lightgbm": "mloop.autolog.lightgbm",
}
_ALIASES: Final = {"scikit-learn": "sklearn"}

_patches: dict[str, list[Patch]] = {}
_lock = threading.Lock()


def _library_names(libraries: Iterable[str] | None) -> frozenset[str]:
    if libraries is None:
        return frozenset(LIBRARIES)
    if isinstance(libraries, str):
        libraries = [libraries]
    names = set()
    for name in libraries:
        key = _ALIASES.get(name, name) if isinstance(name, str) else name
        if key not in LIBRARIES:
            raise InvalidInput(
                f"autolog does not know the library {name!r}; use some of "
                f"{', '.join(sorted(LIBRARIES))}",
                field="libraries",
            )
        names.add(key)
    return frozenset(names)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def patched_libraries() -> list[str]:
    """The libraries whose training functions are patched now."""
    with _lock:
        return sorted(_patches)


def autolog(
    *,
    log_models: bool = True,
    register_as: str | None = None,
    log_datasets: bool | Literal["register"] = True,
    dataset_name: str | None = None,
    max_tuning_runs: int = 5,
    disable: bool = False,
    silent: bool = False,
    libraries: Iterable[str] | None = None,
) -> list[str]:
    """Turn autologging on (or off with ``disable=True``) for the installed libraries among
    ``libraries`` (default: scikit-learn, XGBoost, LightGBM); return the patched ones.

    ``log_models`` packages every fitted model as run artifacts under ``model/``, or, with
    ``register_as``, registers it as the next version of that model (run artifacts under
    ``models/<name>/``). ``log_datasets`` tags the run with the training data's digest, rows and
    columns; ``"register"`` also registers the data as a version of ``dataset_name`` (default
    ``<register_as or estimator>-train``) and records it as the run's training input.
    ``max_tuning_runs`` bounds the child runs of a hyper-parameter search (0: none). ``silent``
    turns off autologging's own warnings. Calling again replaces the configuration; libraries
    not named any more are restored.
    """
    if log_datasets not in (True, False, "register"):
        raise InvalidInput(
            f"log_datasets must be True, False or 'register', got {log_datasets!r}",
            field="log_datasets",
        )
    if register_as is not None:
        from mloop.store.registry import check_model_name

        check_model_name(register_as)
    if dataset_name is not None:
        from mloop.store.datasets import check_dataset_name

        check_dataset_name(dataset_name)
    if isinstance(max_tuning_runs, bool) or not isinstance(max_tuning_runs, int):
        raise InvalidInput("max_tuning_runs must be an integer", field="max_tuning_runs")
    wanted = _library_names(libraries)
    with _lock:
        if disable:
            set_config(None)
            for name in list(_patches):
                _unpatch(name)
            return []
        chosen = frozenset(name for name in wanted if _importable(name))
        for name in list(_patches):
            if name not in chosen:
                _unpatch(name)
        for name in sorted(chosen - set(_patches)):
            module = importlib.import_module(LIBRARIES[name])
            patch: Callable[[], list[Patch]] = module.patch
            _patches[name] = patch()
        set_config(
            AutologConfig(
                log_models=log_models,
                register_as=register_as,
                log_datasets=log_datasets,
                dataset_name=dataset_name,
                silent=silent,
                max_tuning_runs=max(0, max_tuning_runs),
                libraries=chosen,
            )
        )
        return sorted(_patches)


def _unpatch(name: str) -> None:
    # Restore in reverse order, so that a name patched twice ends at its first original.
    for patch in reversed(_patches.pop(name, [])):
        restore(patch)


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`autolog` (``mloop.autolog(...)``)."""

    def __call__(self, **options: Any) -> list[str]:
        return autolog(**options)


sys.modules[__name__].__class__ = _CallableModule
