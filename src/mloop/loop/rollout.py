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

from mloop.errors import InvalidInput

if TYPE_CHECKING:
    from mloop.tracking import TrackingClient

__all__ = ["Canary", "Health", "check_health", "parse_duration"]

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_ALPHA = 0.05  # one-sided significance of "the canary is worse"


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


def _is_classification(labels: Sequence[Any]) -> bool:
    values = [v for v in labels if v is not None]
    if not values:
        return False
    if all(isinstance(v, str | bool) for v in values):
        return True
    distinct = {v for v in values if isinstance(v, int | float)}
    return all(float(v).is_integer() for v in distinct) and len(distinct) <= 50


def _error_rate(pred: Sequence[Any], labels: Sequence[Any]) -> tuple[float | None, int]:
    pairs = [(p, y) for p, y in zip(pred, labels, strict=True) if y is not None]
    if not pairs:
        return None, 0
    wrong = sum(1 for p, y in pairs if str(p) != str(y) and not _same_number(p, y))
    return wrong / len(pairs), len(pairs)


def _same_number(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


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
    import numpy as np

    from mloop.serving.predlog_read import read_predictions

    since = start_ms if baseline_start_ms is None else min(start_ms, baseline_start_ms)
    table = read_predictions(
        deployment, start_ms=since, end_ms=end_ms, with_labels=True, client=client
    )
    if table.num_rows:
        roles = table.column("role").to_pylist()
        versions = table.column("model_version").to_pylist()
        latency = table.column("latency_ms").to_pylist()
        preds = table.column("prediction").to_pylist()
        ts = table.column("ts").cast("int64").to_pylist()
        labels = table.column("label").to_pylist() if "label" in table.column_names else []
    else:
        roles = versions = latency = preds = ts = labels = []
    if not labels:
        labels = [None] * len(roles)
    mine = [
        i
        for i, (r, v) in enumerate(zip(roles, versions, strict=True))
        if v == version and r == "canary" and ts[i] >= start_ms
    ]
    primary = [i for i, r in enumerate(roles) if r == "primary"]
    rows = len(mine)
    c_err, c_n = _error_rate([preds[i] for i in mine], [labels[i] for i in mine])
    if rows < canary.min_rows:
        return Health(None, f"{rows} canary row(s) of the {canary.min_rows} needed", rows, c_n)
    p99 = float(np.percentile([latency[i] for i in mine], 99)) if mine else None
    p_err, p_n = _error_rate([preds[i] for i in primary], [labels[i] for i in primary])
    judged = [labels[i] for i in mine if labels[i] is not None]
    numeric = bool(judged) and not _is_classification(judged)
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
