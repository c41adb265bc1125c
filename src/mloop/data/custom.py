"""Custom expectations: a user's vectorised check, and the registry that lets YAML name it.

A custom check is a function ``fn(frame)`` returning one boolean per row, True where the row
passes. ``Custom(name, fn)`` wraps any such function; only a function registered with
``register_check(name, fn)`` can be saved in (and loaded from) a suite's YAML, by its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop.data.expectations import (
    Expectation,
    ExpectationResult,
    as_frame,
    check_fraction,
    failing_sample,
)
from mloop.errors import InvalidInput

__all__ = ["CheckFunction", "Custom", "register_check", "registered_checks"]

CheckFunction = Callable[[pd.DataFrame], Any]
"""A custom check: takes the frame, returns a boolean mask (Series or ndarray), True = passes."""

_REGISTRY: dict[str, tuple[CheckFunction, str]] = {}


def register_check(name: str, fn: CheckFunction, *, description: str = "") -> None:
    """Register a custom vectorised check under a name, so suites in YAML can refer to it."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("register_check: 'name' must be a non-empty string")
    if not callable(fn):
        raise InvalidInput(f"register_check: 'fn' for check '{name}' must be callable")
    _REGISTRY[name] = (fn, description)


def registered_checks() -> dict[str, CheckFunction]:
    """The registered custom checks, by name."""
    return {name: fn for name, (fn, _) in _REGISTRY.items()}


@dataclass(frozen=True)
class Custom(Expectation):
    """A user's vectorised check: ``fn(frame)`` returns a boolean mask, True where a row passes.

    The mask is positional (one entry per row, in order); a null in a nullable boolean mask
    fails the row. Only a check registered with ``register_check(name, fn)`` can be saved to
    YAML, by name.
    ``columns`` chooses which values the failing-row sample shows (all columns when empty).
    An exception raised by ``fn`` gives a failed result naming the check and the error.
    """

    kind: ClassVar[str] = "custom"
    counts_rows: ClassVar[bool] = True
    name: str
    fn: CheckFunction = field(compare=True, repr=False)
    description: str = ""
    mostly: float = 1.0
    columns: Sequence[str] = ()
    """Columns shown in the failing-row sample (stored as a tuple)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput("custom: 'name' must be a non-empty string", field="name")
        if not callable(self.fn):
            raise InvalidInput(f"custom '{self.name}': 'fn' must be callable", field="fn")
        if not isinstance(self.description, str):
            raise InvalidInput(
                f"custom '{self.name}': 'description' must be a string", field="description"
            )
        check_fraction(self.kind, "mostly", self.mostly)
        if (
            not isinstance(self.columns, Sequence | set | frozenset)
            or not all(isinstance(c, str) for c in self.columns)
            or isinstance(self.columns, str)
        ):
            raise InvalidInput(
                f"custom '{self.name}': 'columns' must be a list of column names", field="columns"
            )
        object.__setattr__(self, "columns", tuple(self.columns))

    @classmethod
    def registered(
        cls, name: str, *, mostly: float = 1.0, columns: Sequence[str] = (), description: str = ""
    ) -> Custom:
        """The custom expectation for a check registered under ``name``."""
        if not isinstance(name, str) or not name:
            raise InvalidInput(
                f"custom: 'name' must be a non-empty string, got {name!r}", field="name"
            )
        if isinstance(columns, str) or not isinstance(columns, Sequence):
            raise InvalidInput(
                f"custom '{name}': 'columns' must be a list of column names", field="columns"
            )
        if name not in _REGISTRY:
            known = ", ".join(sorted(_REGISTRY)) or "none"
            raise InvalidInput(
                f"custom check '{name}' is not registered (registered: {known}); "
                "call register_check(name, fn) before loading the suite",
                field="name",
            )
        fn, registered_description = _REGISTRY[name]
        return cls(name, fn, description or registered_description, mostly, tuple(columns))

    @property
    def is_registered(self) -> bool:
        """Whether ``name`` is registered to this very function (so YAML can refer to it)."""
        entry = _REGISTRY.get(self.name)
        return entry is not None and entry[0] is self.fn

    def params(self) -> dict[str, Any]:
        """The YAML parameters; the function itself is referred to by its registered name."""
        out = super().params()
        out.pop("fn", None)
        registered_description = _REGISTRY.get(self.name, (None, ""))[1]
        if out.get("description") == registered_description:
            out.pop("description")
        return out

    def check(self, frame: Any, *, sample_size: int = 5) -> ExpectationResult:
        """Run the user's function and count the rows its mask rejects."""
        frame = as_frame(frame)
        try:
            mask = self.fn(frame)
            if isinstance(mask, pd.Series) and pd.api.types.is_bool_dtype(mask.dtype):
                passed = mask.to_numpy(dtype=bool, na_value=False)  # NA fails
            else:
                passed = np.asarray(mask)
        except Exception as exc:  # user code: report it in the result, keep validating
            return self._result(
                False, f"custom check '{self.name}' raised {type(exc).__name__}: {exc}"
            )
        if passed.dtype != bool or passed.shape != (len(frame),):
            return self._result(
                False,
                f"custom check '{self.name}' must return one boolean per row "
                f"({len(frame)}), got dtype {passed.dtype} and shape {passed.shape}",
            )
        bad = ~passed
        count = len(frame)
        unexpected = int(bad.sum())
        success = count == 0 or (count - unexpected) / count >= self.mostly
        columns = [c for c in self.columns if c in frame.columns] or list(frame.columns)
        sample = failing_sample(frame, columns, bad, sample_size) if unexpected else ()
        fraction = unexpected / count if count else 0.0
        message = (
            f"{unexpected} of {count} rows fail '{self.name}' ({fraction:.2%})"
            if unexpected
            else f"all {count} rows pass '{self.name}'"
        )
        return self._result(
            success,
            message,
            observed=fraction,
            element_count=count,
            unexpected_count=unexpected,
            sample=sample,
        )
