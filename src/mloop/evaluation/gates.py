"""Gates: declarative thresholds a model's evaluation must meet before it is promoted.

A :class:`Gate` is data (it round-trips through a dict, JSON or YAML) and its check is pure: it
reads one candidate :class:`EvaluationResult` and, optionally, the champion's, and returns a
:class:`GateDecision` with one :class:`GateCheck` per threshold — the observed value, the
required one and a sentence saying why it passed or failed. Recording the decision and moving
aliases is the registry's job.

Rules:

- Metric names are checked when the gate is built: an unknown name raises
  :class:`InvalidInput` listing the known ones. A known metric the result does not hold (no
  probabilities, another task) fails its check with that reason: gates fail closed.
- ``beat_champion`` maps a metric to a margin δ: a higher-is-better metric must reach
  ``champion + δ``, a lower-is-better one ``champion - δ`` or less (a negative δ is a
  non-inferiority margin). A neutral metric (``selection_rate``) is refused there.
- With no champion, each ``beat_champion`` check passes with the reason "no champion", unless
  ``require_champion`` is set, when it fails.
- A champion evaluated on other data (task, target, row count or data digest differ) is refused
  with :class:`InvalidInput`: comparing them would mean nothing.
- ``max_slice_gap`` bounds the largest minus smallest value of a slice metric over the groups of
  any slice column; a result without slices fails it.
- ``max_latency_ms`` bounds the p99 single-row ``predict`` latency; an unmeasured latency fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop.errors import InvalidInput
from mloop.evaluation.metrics import KNOWN_METRICS, direction
from mloop.evaluation.results import (
    GAP_ALIASES,
    EvaluationResult,
    decode_float,
    encode_float,
)

__all__ = ["LATENCY_METRIC", "Gate", "GateCheck", "GateDecision"]

CheckKind = Literal["min", "max", "beat_champion", "max_slice_gap", "max_latency_ms"]
_KINDS = ("min", "max", "beat_champion", "max_slice_gap", "max_latency_ms")
#: The metric name a latency check reports.
LATENCY_METRIC = "latency_p99_ms"
_GATE_KEYS = (*_KINDS, "require_champion")


def _known_list() -> str:
    return ", ".join(sorted(KNOWN_METRICS))


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where} must be a number, got {value!r}", field=where)
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"{where} must be a finite number, got {value!r}", field=where)
    return number


def _thresholds(raw: Any, kind: str) -> dict[str, float]:
    """Validate one ``{metric: number}`` mapping of a gate."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput(
            f"gate {kind} must be a mapping of metric to number, got {type(raw).__name__}"
        )
    out: dict[str, float] = {}
    for metric, value in raw.items():
        if not isinstance(metric, str):
            raise InvalidInput(f"gate {kind} has a non-text metric name {metric!r}")
        name = GAP_ALIASES.get(metric, metric) if kind == "max_slice_gap" else metric
        if name not in KNOWN_METRICS:
            extra = f", {', '.join(GAP_ALIASES)}" if kind == "max_slice_gap" else ""
            raise InvalidInput(
                f"gate {kind} names unknown metric {metric!r}; known metrics: "
                f"{_known_list()}{extra}",
                metric=metric,
            )
        if kind == "beat_champion" and direction(name) is None:
            raise InvalidInput(
                f"gate beat_champion cannot use {metric!r}: it has no better direction",
                metric=metric,
            )
        number = _number(value, f"gate {kind}[{metric!r}]")
        if kind == "max_slice_gap" and number < 0:
            raise InvalidInput(f"gate max_slice_gap[{metric!r}] must be >= 0, got {number}")
        out[metric] = number
    return out


@dataclass(frozen=True)
class GateCheck:
    """One threshold of a gate applied to a result: what was seen, what was needed, and why."""

    name: CheckKind
    metric: str
    passed: bool
    observed: float | None
    required: float | None
    reason: str
    champion: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (non-finite numbers encoded as in :mod:`mloop.evaluation.results`)."""
        return {
            "name": self.name,
            "metric": self.metric,
            "passed": self.passed,
            "observed": encode_float(self.observed) if self.observed is not None else None,
            "required": encode_float(self.required) if self.required is not None else None,
            "champion": encode_float(self.champion) if self.champion is not None else None,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> GateCheck:
        """Read the form written by :meth:`to_dict`."""
        name = raw.get("name")
        if name not in _KINDS:
            raise InvalidInput(f"gate check name must be one of {', '.join(_KINDS)}, got {name!r}")

        def opt(key: str) -> float | None:
            value = raw.get(key)
            return None if value is None else decode_float(value)

        return cls(
            name=name,
            metric=str(raw["metric"]),
            passed=bool(raw["passed"]),
            observed=opt("observed"),
            required=opt("required"),
            reason=str(raw.get("reason", "")),
            champion=opt("champion"),
        )


@dataclass(frozen=True)
class GateDecision:
    """The outcome of :meth:`Gate.check`: passed only if every check passed."""

    passed: bool
    checks: list[GateCheck]
    gate: dict[str, Any] = field(default_factory=dict)
    data_digest: str | None = None
    champion_data_digest: str | None = None

    @property
    def reasons(self) -> list[str]:
        """The sentences of the failed checks (empty when the gate passed)."""
        return [c.reason for c in self.checks if not c.passed]

    @property
    def failed(self) -> list[GateCheck]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line: PASSED, or FAILED with the reasons."""
        if self.passed:
            return f"PASSED ({len(self.checks)} checks)"
        return f"FAILED: {'; '.join(self.reasons)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "gate": dict(self.gate),
            "data_digest": self.data_digest,
            "champion_data_digest": self.champion_data_digest,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> GateDecision:
        """Read the form written by :meth:`to_dict`."""
        try:
            return cls(
                passed=bool(raw["passed"]),
                checks=[GateCheck.from_dict(c) for c in raw["checks"]],
                gate=dict(raw.get("gate", {})),
                data_digest=raw.get("data_digest"),
                champion_data_digest=raw.get("champion_data_digest"),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed gate decision: {exc!r}") from exc


def _fmt(value: float) -> str:
    return f"{value:.4g}"


@dataclass(frozen=True)
class Gate:
    """Declarative promotion thresholds; see the module docstring for the rules.

    ``min``/``max`` bound overall metrics, ``beat_champion`` maps a metric to the margin δ the
    candidate must beat the champion by, ``max_slice_gap`` bounds slice gaps, ``max_latency_ms``
    the p99 single-row latency.
    """

    min: dict[str, float] = field(default_factory=dict)
    max: dict[str, float] = field(default_factory=dict)
    beat_champion: dict[str, float] = field(default_factory=dict)
    max_slice_gap: dict[str, float] = field(default_factory=dict)
    max_latency_ms: float | None = None
    require_champion: bool = False

    def __post_init__(self) -> None:
        for kind in ("min", "max", "beat_champion", "max_slice_gap"):
            object.__setattr__(self, kind, _thresholds(getattr(self, kind), kind))
        if self.max_latency_ms is not None:
            budget = _number(self.max_latency_ms, "gate max_latency_ms")
            if budget <= 0:
                raise InvalidInput(f"gate max_latency_ms must be > 0, got {budget}")
            object.__setattr__(self, "max_latency_ms", budget)
        if not isinstance(self.require_champion, bool):
            raise InvalidInput(
                f"gate require_champion must be true or false, got {self.require_champion!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON- and YAML-ready form."""
        return {
            "min": dict(self.min),
            "max": dict(self.max),
            "beat_champion": dict(self.beat_champion),
            "max_slice_gap": dict(self.max_slice_gap),
            "max_latency_ms": self.max_latency_ms,
            "require_champion": self.require_champion,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Gate:
        """Build a gate from a dict (e.g. parsed YAML); unknown keys raise :class:`InvalidInput`."""
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"a gate must be a mapping, got {type(raw).__name__}")
        unknown = [str(k) for k in raw if k not in _GATE_KEYS]
        if unknown:
            raise InvalidInput(
                f"unknown gate field(s) {', '.join(unknown)}; allowed: {', '.join(_GATE_KEYS)}"
            )
        return cls(
            min=raw.get("min") or {},
            max=raw.get("max") or {},
            beat_champion=raw.get("beat_champion") or {},
            max_slice_gap=raw.get("max_slice_gap") or {},
            max_latency_ms=raw.get("max_latency_ms"),
            require_champion=raw.get("require_champion", False),
        )

    @classmethod
    def from_yaml(cls, text: str) -> Gate:
        """Build a gate from YAML text holding the fields of :meth:`to_dict`."""
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"gate YAML does not parse: {exc}") from exc
        return cls.from_dict(raw or {})

    def check(
        self,
        candidate: EvaluationResult | Mapping[str, Any],
        champion: EvaluationResult | Mapping[str, Any] | None = None,
    ) -> GateDecision:
        """Apply every threshold to ``candidate`` (and ``champion`` for ``beat_champion``)."""
        cand = _result(candidate, "candidate")
        champ = None if champion is None else _result(champion, "champion")
        if champ is not None and self.beat_champion:
            _same_data(cand, champ)
        checks: list[GateCheck] = []
        for metric, bound in self.min.items():
            checks.append(_bound(cand, metric, bound, "min"))
        for metric, bound in self.max.items():
            checks.append(_bound(cand, metric, bound, "max"))
        for metric, delta in self.beat_champion.items():
            checks.append(_beat(cand, champ, metric, delta, self.require_champion))
        for metric, bound in self.max_slice_gap.items():
            checks.append(_slice_gap(cand, metric, bound))
        if self.max_latency_ms is not None:
            checks.append(_latency(cand, self.max_latency_ms))
        return GateDecision(
            passed=all(c.passed for c in checks),
            checks=checks,
            gate=self.to_dict(),
            data_digest=cand.data_digest,
            champion_data_digest=champ.data_digest if champ is not None else None,
        )


def _result(value: EvaluationResult | Mapping[str, Any], what: str) -> EvaluationResult:
    if isinstance(value, EvaluationResult):
        return value
    if isinstance(value, Mapping):
        return EvaluationResult.from_dict(value)
    raise InvalidInput(
        f"the {what} must be an EvaluationResult or its dict, got {type(value).__name__}"
    )


def _same_data(cand: EvaluationResult, champ: EvaluationResult) -> None:
    """Refuse to compare results from different tasks, targets or rows."""
    if cand.task != champ.task or cand.target != champ.target:
        raise InvalidInput(
            f"the champion was evaluated as {champ.task} of {champ.target!r}, the candidate as "
            f"{cand.task} of {cand.target!r}; they cannot be compared"
        )
    if cand.n_rows != champ.n_rows or cand.data_digest != champ.data_digest:
        raise InvalidInput(
            "the champion was evaluated on different data than the candidate "
            f"(champion: {champ.n_rows} rows, digest {champ.data_digest[:12]}; candidate: "
            f"{cand.n_rows} rows, digest {cand.data_digest[:12]}); evaluate both on the same "
            "held-out data",
            candidate_digest=cand.data_digest,
            champion_digest=champ.data_digest,
        )


def _missing(result: EvaluationResult, metric: str, whose: str = "the candidate") -> str:
    available = ", ".join(result.metrics) or "none"
    why = [n for n in result.notes if n.startswith(metric) or "probability" in n]
    hint = f" ({why[0]})" if why else ""
    return f"{metric} was not computed for {whose} ({result.task}; available: {available}){hint}"


def _bound(cand: EvaluationResult, metric: str, bound: float, kind: CheckKind) -> GateCheck:
    observed = cand.metrics.get(metric)
    if observed is None or math.isnan(observed):
        return GateCheck(kind, metric, False, None, bound, _missing(cand, metric))
    if kind == "min":
        passed = observed >= bound
        reason = (
            f"{metric} is {_fmt(observed)}, at least the minimum {_fmt(bound)}"
            if passed
            else f"{metric} is {_fmt(observed)}, below the minimum {_fmt(bound)}"
        )
    else:
        passed = observed <= bound
        reason = (
            f"{metric} is {_fmt(observed)}, at most the maximum {_fmt(bound)}"
            if passed
            else f"{metric} is {_fmt(observed)}, above the maximum {_fmt(bound)}"
        )
    return GateCheck(kind, metric, passed, observed, bound, reason)


def _beat(
    cand: EvaluationResult,
    champ: EvaluationResult | None,
    metric: str,
    delta: float,
    require_champion: bool,
) -> GateCheck:
    observed = cand.metrics.get(metric)
    if champ is None:
        if require_champion:
            reason = f"no champion to compare {metric} with, and the gate requires one"
            return GateCheck("beat_champion", metric, False, observed, None, reason)
        reason = f"no champion: {metric} has nothing to beat, so this check passes"
        return GateCheck("beat_champion", metric, True, observed, None, reason)
    if observed is None or math.isnan(observed):
        return GateCheck("beat_champion", metric, False, None, None, _missing(cand, metric))
    baseline = champ.metrics.get(metric)
    if baseline is None or math.isnan(baseline):
        reason = _missing(champ, metric, "the champion") + "; cannot compare"
        return GateCheck("beat_champion", metric, False, observed, None, reason)
    higher = direction(metric) == "higher"
    required = baseline + delta if higher else baseline - delta
    passed = observed >= required if higher else observed <= required
    word = "higher" if higher else "lower"
    verdict = "beats" if passed else "does not beat"
    reason = (
        f"{metric} is {_fmt(observed)}, which {verdict} the champion's {_fmt(baseline)} by the "
        f"margin {_fmt(delta)} ({word} is better; needs {'>=' if higher else '<='} "
        f"{_fmt(required)})"
    )
    return GateCheck("beat_champion", metric, passed, observed, required, reason, baseline)


def _slice_gap(cand: EvaluationResult, metric: str, bound: float) -> GateCheck:
    if not cand.slices:
        reason = f"no slices were evaluated, so the {metric} gap cannot be checked"
        return GateCheck("max_slice_gap", metric, False, None, bound, reason)
    per_column = cand.slice_values(metric)
    widest: tuple[float, str, str, float, str, float] | None = None
    for column, groups in per_column.items():
        if not groups:
            continue
        hi = max(groups, key=lambda g: groups[g])
        lo = min(groups, key=lambda g: groups[g])
        gap = groups[hi] - groups[lo]
        if widest is None or gap > widest[0]:
            widest = (gap, column, hi, groups[hi], lo, groups[lo])
    if widest is None:
        reason = f"{metric} is not defined for any slice group, so its gap cannot be checked"
        return GateCheck("max_slice_gap", metric, False, None, bound, reason)
    gap, column, hi, hi_value, lo, lo_value = widest
    passed = gap <= bound
    name = GAP_ALIASES.get(metric, metric)
    what = f"the {name} gap" if name == metric else f"{metric} (the {name} gap)"
    reason = (
        f"{what} across {column!r} is {_fmt(gap)} ({hi} {_fmt(hi_value)} vs "
        f"{lo} {_fmt(lo_value)}), {'within' if passed else 'above'} the maximum {_fmt(bound)}"
    )
    return GateCheck("max_slice_gap", metric, passed, gap, bound, reason)


def _latency(cand: EvaluationResult, budget: float) -> GateCheck:
    if cand.latency is None:
        reason = "latency was not measured (evaluate with latency=True)"
        return GateCheck("max_latency_ms", LATENCY_METRIC, False, None, budget, reason)
    observed = cand.latency.p99_ms
    passed = observed <= budget
    reason = (
        f"p99 single-row latency is {_fmt(observed)} ms, "
        f"{'within' if passed else 'above'} the budget {_fmt(budget)} ms"
    )
    return GateCheck("max_latency_ms", LATENCY_METRIC, passed, observed, budget, reason)
