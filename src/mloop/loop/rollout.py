"""Canary rollouts: the steps, how long each is held, and the health a step must show.

A :class:`Canary` sends a growing share of a deployment's traffic to the challenger
(``steps``, fractions of 1), holding each step for ``hold``. When a hold ends, the prediction
log of that hold decides (:func:`check_health`):

- ``min_rows``: the canary must have answered at least this many rows; until it has, the hold
  goes on, and after three holds without them the step fails (no evidence is not health);
- ``max_p99_ms``: the 99th percentile of the canary rows' latency must stay within it;
- ``max_error_rate``: on the rows labelled so far, the canary's error rate (the share of
  predictions that differ from the label) may exceed the primary's by at most this much — the
  primary's rate is taken over the whole rollout so far (at a 100 % step it answers nothing);
  a larger excess fails only when it is significant (a one-sided exact binomial test at 5 %),
  so a handful of labels cannot roll back a good model by chance. Without labelled primary
  rows there is nothing to compare with and the check is skipped (the reason says so).
  Regressors have no error rate: it is skipped for numeric labels with many distinct values.

The prediction log holds answered requests only; failed requests are counted in the server's
Prometheus metrics, which the agent does not read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mloop.errors import InvalidInput

if TYPE_CHECKING:
    from mloop.tracking import TrackingClient

__all__ = ["Canary", "Health", "check_health", "parse_duration"]

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_ALPHA = 0.05  # one-sided significance of "the canary is worse"
#: What an empty stretch of the prediction log is read as.
_EMPTY = pa.table({
    "role": pa.array([], pa.string()), "model_version": pa.array([], pa.int64()),
    "ts": pa.array([], pa.int64()), "latency_ms": pa.array([], pa.float64()),
    "prediction": pa.array([], pa.string()), "label": pa.array([], pa.string()),
})  # fmt: skip


def parse_duration(value: object, field_name: str) -> int:
    """Milliseconds of ``"15m"``, ``"0.2s"``, ``"6h"``, ``"1d"``, ``"250ms"`` or a number of
    seconds; InvalidInput naming ``field_name`` otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return round(value * 1000)
    elif isinstance(value, str):
        found = _DURATION.fullmatch(value)
        if found is not None:
            return round(float(found[1]) * _UNIT_MS[found[2]])
    raise InvalidInput(
        f"{field_name} {value!r} is not a duration: give e.g. '15m', '0.2s', '6h', '1d', "
        "'250ms' or a number of seconds >= 0",
        field=field_name,
    )


def _fraction_steps(steps: object) -> tuple[float, ...]:
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence) or not steps:
        raise InvalidInput(
            f"canary steps must be a non-empty list of fractions, got {steps!r} "
            "(e.g. [0.1, 0.5, 1.0])",
            field="steps",
        )
    out: list[float] = []
    for step in steps:
        if isinstance(step, bool) or not isinstance(step, int | float) or not 0 < step <= 1:
            raise InvalidInput(
                f"canary step {step!r} is not a fraction of the traffic in (0, 1]",
                field="steps",
            )
        if out and step <= out[-1]:
            raise InvalidInput(f"canary steps must grow: {step} follows {out[-1]}", field="steps")
        out.append(float(step))
    return tuple(out)


@dataclass(frozen=True)
class Canary:
    """A canary rollout: traffic ``steps`` (fractions, growing, the last usually 1.0), each
    held for ``hold`` while health stays within bounds (see the module docstring)."""

    steps: Sequence[float] = (0.1, 0.5, 1.0)
    hold: str | float = "15m"
    max_error_rate: float | None = 0.01
    max_p99_ms: float | None = None
    min_rows: int = 20
    hold_ms: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", _fraction_steps(self.steps))
        object.__setattr__(self, "hold_ms", parse_duration(self.hold, "hold"))
        for name in ("max_error_rate", "max_p99_ms"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidInput(f"canary {name} must be a number >= 0 or None, got {value!r}")
            if not math.isfinite(value):
                raise InvalidInput(f"canary {name} must be finite, got {value!r}")
        if self.max_error_rate is not None and self.max_error_rate > 1:
            raise InvalidInput(
                f"canary max_error_rate is a share in [0, 1], got {self.max_error_rate}"
            )
        if isinstance(self.min_rows, bool) or not isinstance(self.min_rows, int):
            raise InvalidInput(f"canary min_rows must be a whole number, got {self.min_rows!r}")
        if self.min_rows < 0:
            raise InvalidInput(f"canary min_rows must be >= 0, got {self.min_rows}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``hold`` as given, and in milliseconds)."""
        return {
            "kind": "canary",
            "steps": list(self.steps),
            "hold": self.hold,
            "hold_ms": self.hold_ms,
            "max_error_rate": self.max_error_rate,
            "max_p99_ms": self.max_p99_ms,
            "min_rows": self.min_rows,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Canary:
        """Read the form written by :meth:`to_dict` (or a plain mapping of the fields)."""
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"a rollout must be a Canary or a mapping, got {type(raw).__name__}")
        known = {"kind", "steps", "hold", "hold_ms", "max_error_rate", "max_p99_ms", "min_rows"}
        unknown = sorted(str(k) for k in raw if k not in known)
        if unknown:
            raise InvalidInput(
                f"unknown rollout field(s) {', '.join(unknown)}; allowed: "
                "steps, hold, max_error_rate, max_p99_ms, min_rows"
            )
        if raw.get("kind", "canary") != "canary":
            raise InvalidInput(f"rollout kind must be 'canary', got {raw.get('kind')!r}")
        return cls(
            steps=raw.get("steps", (0.1, 0.5, 1.0)),
            hold=raw.get("hold", "15m"),
            max_error_rate=raw.get("max_error_rate", 0.01),
            max_p99_ms=raw.get("max_p99_ms"),
            min_rows=raw.get("min_rows", 20),
        )


@dataclass(frozen=True)
class Health:
    """What one hold of a canary step showed: ``passed`` None means not enough rows yet."""

    passed: bool | None
    reason: str
    rows: int
    labelled: int
    p99_ms: float | None = None
    error_rate: float | None = None
    primary_error_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "passed": self.passed, "reason": self.reason, "rows": self.rows,
            "labelled": self.labelled, "p99_ms": self.p99_ms, "error_rate": self.error_rate,
            "primary_error_rate": self.primary_error_rate,
        }  # fmt: skip


def _numeric(kind: pa.DataType) -> bool:
    """Whether a type holds numbers (booleans count as 0 and 1)."""
    types = pa.types
    return bool(types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind))


def _is_classification(labels: pa.ChunkedArray) -> bool:
    """Text or boolean labels, or whole numbers with at most 50 distinct values (a regressor's
    labels are not)."""
    values = pc.drop_null(_plain(labels))
    if len(values) == 0:
        return False
    if not _numeric(values.type) or pa.types.is_boolean(values.type):
        return True
    distinct = pc.unique(values.cast(pa.float64())).to_numpy(zero_copy_only=False)
    return len(distinct) <= 50 and bool(np.all(np.mod(distinct, 1.0) == 0.0))


def _continuous(predictions: pa.ChunkedArray) -> bool:
    """Whether the predictions are a regressor's: floating-point numbers that are not all
    whole (a count's labels alone look like classes on a small sample)."""
    values = pc.drop_null(_plain(predictions))
    if len(values) == 0 or not pa.types.is_floating(values.type):
        return False
    numbers = values.to_numpy(zero_copy_only=False)
    return not bool(np.all(np.mod(numbers[np.isfinite(numbers)], 1.0) == 0.0))


def _as_float(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """The values as float64 (text holding numbers too); None when some are not numbers."""
    try:
        return column.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column decoded to its values."""
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _error_rate(pred: pa.ChunkedArray, labels: pa.ChunkedArray) -> tuple[float | None, int]:
    """The share of labelled rows whose prediction differs from the label (equal numbers are
    equal whatever their type: 1, 1.0 and "1"); None without labelled rows."""
    pred, labels = _plain(pred), _plain(labels)
    keep = pc.is_valid(labels)
    labelled = int(pc.sum(keep).as_py() or 0)
    if labelled == 0:
        return None, 0
    pred, labels = pred.filter(keep), labels.filter(keep)
    nested = not (_numeric(pred.type) or pa.types.is_string(pred.type)) or not (
        _numeric(labels.type) or pa.types.is_string(labels.type)
    )
    if nested:  # lists or records: compare their text
        wrong = sum(
            1 for a, b in zip(pred.to_pylist(), labels.to_pylist(), strict=True) if str(a) != str(b)
        )
        return wrong / labelled, labelled
    as_numbers = (_as_float(pred), _as_float(labels))
    if as_numbers[0] is not None and as_numbers[1] is not None:
        differs = pc.not_equal(as_numbers[0], as_numbers[1])
    else:
        differs = pc.not_equal(pred.cast(pa.string()), labels.cast(pa.string()))
    wrong = int(pc.sum(pc.fill_null(differs, True)).as_py() or 0)
    return wrong / labelled, labelled


def _significantly_worse(p1: float, n1: int, p0: float, n0: int, margin: float) -> bool:
    """One-sided exact binomial test that the canary's error rate exceeds the primary's plus
    ``margin``: the chance of at least the canary's errors among its ``n1`` labelled rows, were
    its rate ``p0 + margin``, is under 5 %. The primary's rate, from the larger sample, is taken
    as known; a normal approximation would call 2 errors in 16 rows significant, this does not."""
    from scipy.stats import binom

    if n1 <= 0 or n0 <= 0:
        return False
    errors = round(p1 * n1)
    allowed = min(max(p0 + margin, 0.0), 1.0)
    return bool(binom.sf(errors - 1, n1, allowed) < _ALPHA)


def check_health(
    deployment: str,
    version: int,
    canary: Canary,
    *,
    start_ms: int,
    end_ms: int,
    baseline_start_ms: int | None = None,
    client: TrackingClient,
) -> Health:
    """Judge the canary ``version`` of ``deployment`` on the prediction log of
    ``[start_ms, end_ms)`` (see the module docstring). The primary's error rate is taken from
    ``[baseline_start_ms, end_ms)`` when given (the whole rollout: at a 100 % step the primary
    answers nothing)."""
    from mloop.serving.predlog_read import read_predictions

    since = start_ms if baseline_start_ms is None else min(start_ms, baseline_start_ms)
    table = read_predictions(
        deployment, start_ms=since, end_ms=end_ms, with_labels=True, client=client
    )
    if table.num_rows == 0:
        table = _EMPTY
    elif "label" not in table.column_names:
        table = table.append_column("label", pa.nulls(table.num_rows))
    role = table.column("role").cast(pa.string())
    mine_mask = pc.and_(
        pc.and_(pc.equal(table.column("model_version"), version), pc.equal(role, "canary")),
        pc.greater_equal(table.column("ts").cast(pa.int64()), start_ms),
    )
    mine = table.filter(pc.fill_null(mine_mask, False))
    primary = table.filter(pc.fill_null(pc.equal(role, "primary"), False))
    rows = mine.num_rows
    c_err, c_n = _error_rate(mine.column("prediction"), mine.column("label"))
    if rows < canary.min_rows:
        return Health(None, f"{rows} canary row(s) of the {canary.min_rows} needed", rows, c_n)
    latency = mine.column("latency_ms").to_numpy()
    p99 = float(np.percentile(latency, 99)) if rows else None
    p_err, p_n = _error_rate(primary.column("prediction"), primary.column("label"))
    labels = mine.column("label")
    numeric = c_n > 0 and (_continuous(mine.column("prediction")) or not _is_classification(labels))
    if numeric:  # a regressor: "differs from the label" is no error rate
        c_err = p_err = None
    health: dict[str, Any] = {"rows": rows, "labelled": c_n, "p99_ms": p99, "error_rate": c_err}
    if canary.max_p99_ms is not None and p99 is not None and p99 > canary.max_p99_ms:
        return Health(
            False,
            f"canary p99 latency {p99:.1f} ms is over max_p99_ms={canary.max_p99_ms:g}",
            primary_error_rate=p_err,
            **health,
        )
    compared = canary.max_error_rate is not None and c_err is not None and p_err is not None
    if compared and _significantly_worse(
        float(c_err or 0.0), c_n, float(p_err or 0.0), p_n, float(canary.max_error_rate or 0.0)
    ):
        return Health(
            False,
            f"canary error rate {c_err:.3f} on {c_n} labelled row(s) exceeds the primary's "
            f"{p_err:.3f} (on {p_n}) by more than max_error_rate={canary.max_error_rate:g}",
            primary_error_rate=p_err,
            **health,
        )
    parts = [f"{rows} canary row(s)"]
    if p99 is not None:
        parts.append(f"p99 {p99:.1f} ms")
    if numeric:
        parts.append(f"{c_n} labelled (numeric labels: no error rate to compare)")
    elif c_err is not None:
        if p_err is None:
            parts.append(
                f"error rate {c_err:.3f} on {c_n} labelled, not compared: the primary has no "
                "labelled rows in the rollout"
            )
        else:
            parts.append(f"error rate {c_err:.3f} on {c_n} labelled (primary {p_err:.3f})")
    return Health(True, "healthy: " + ", ".join(parts), primary_error_rate=p_err, **health)
