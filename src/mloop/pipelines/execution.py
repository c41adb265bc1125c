"""The unit of work every executor runs: one step, from recorded inputs to recorded outputs.

The runner (graph order, caching, tracked runs, retries, timeouts) hands an executor a
:class:`StepSpec`; the executor calls :func:`execute_step` with it — inline, in a worker
process, or as a Ray task — and gets a :class:`StepOutcome` back. Both are plain picklable
data: values travel between steps only through the artifact store (as
:class:`~mloop.pipelines.materialisers.OutputRecord` digests), so a worker on another machine
needs nothing but the artifact store's URI, which must then be shared (S3 or a shared folder).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput, InvalidState
from mloop.pipelines.scratch import scratch

__all__ = ["StepFailure", "StepOutcome", "StepSpec", "execute_step", "outputs_json", "step_ref"]


def _type_name(exc: BaseException) -> str:
    """``module.qualname`` of an exception's type, as failures record it."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def step_ref(step: Any) -> str:
    """``module:qualname`` of a step, by which a worker imports it."""
    func = getattr(step, "func", step)
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or "<locals>" in qualname or "<lambda>" in qualname:
        raise InvalidInput(
            f"step {qualname or func!r} cannot be shipped to another process: define each step "
            "once, at module level"
        )
    return f"{module}:{qualname}"


@dataclass(frozen=True)
class StepSpec:
    """What a worker needs to run one step.

    ``arguments`` maps each parameter to either a JSON literal (``{"literal": value}``) or a
    stored output (``{"output": OutputRecord.to_dict(), "blobs": {path: digest}}``) to be
    read back from ``artifact_uri``.
    """

    node_id: str
    step: str
    arguments: dict[str, dict[str, Any]]
    artifact_uri: str
    allow_pickle: bool = False
    trusted: bool = False
    attempt: int = 1


@dataclass(frozen=True)
class StepFailure:
    """Why a step failed: the exception's type and message, and its formatted traceback."""

    type: str
    message: str
    traceback: str


@dataclass(frozen=True)
class StepOutcome:
    """What running one step produced: each output's record and its blobs, or a failure."""

    node_id: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    blobs: list[dict[str, str]] = field(default_factory=list)
    logs: str = ""
    started_at: float = 0.0
    seconds: float = 0.0
    failure: StepFailure | None = None

    @property
    def ok(self) -> bool:
        """Whether the step succeeded."""
        return self.failure is None


def outputs_json(outputs: list[dict[str, Any]], blobs: list[dict[str, str]]) -> str:
    """The text of a step run's ``outputs.json``: each output's record and stored blobs."""
    entries = [{"record": r, "blobs": b} for r, b in zip(outputs, blobs, strict=True)]
    return json.dumps({"outputs": entries}, indent=2)


def _import_step(ref: str) -> Any:
    module_name, _, qualname = ref.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def execute_step(spec: StepSpec) -> StepOutcome:
    """Run one step where this is called: read its inputs from the artifact store, call it,
    store its outputs; never raises for the step's own errors (they come back in the outcome)."""
    from mloop.artifacts import open_artifact_store
    from mloop.pipelines.materialisers import OutputRecord, dematerialise, materialise

    started = time.time()
    clock = time.perf_counter()
    captured = io.StringIO()
    try:
        cas = open_artifact_store(spec.artifact_uri)
        step = _import_step(spec.step)
        with scratch() as work:
            values: dict[str, Any] = {}
            for name, argument in spec.arguments.items():
                if "literal" in argument:
                    values[name] = argument["literal"]
                    continue
                record = OutputRecord.from_dict(argument["output"])
                folder = work / f"in.{name}"  # one level: each folder level costs a mkdir
                cas.download_many(
                    [(digest, folder / rel) for rel, digest in argument["blobs"].items()]
                )
                values[name] = dematerialise(folder, record, trusted=spec.trusted)
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                result = step.call_with(values) if hasattr(step, "call_with") else step(**values)
            count = getattr(step, "output_count", None)  # None: one output
            results = [result] if count is None else list(result)
            if count is not None and len(results) != count:
                raise InvalidInput(
                    f"step {spec.node_id!r} is annotated with {count} outputs but returned "
                    f"{len(results)}"
                )
            outputs: list[dict[str, Any]] = []
            blobs: list[dict[str, str]] = []
            paths: list[Path] = []
            for index, value in enumerate(results):
                folder = work / f"out.{index}"
                record = materialise(value, folder, allow_pickle=spec.allow_pickle)
                files = sorted(record.files)
                paths += [folder.joinpath(*rel.split("/")) for rel in files]
                outputs.append(record.to_dict())
                blobs.append({rel: record.files[rel][0] for rel in files})
            logs = captured.getvalue()
            # The runner records outputs.json (and, for a first attempt, logs.txt) with exactly
            # these bytes: storing them in this batch spares it a batch of its own.
            texts = {"outputs.json": outputs_json(outputs, blobs)}
            if spec.attempt == 1:
                texts["logs.txt"] = logs
            for name, text in texts.items():
                (work / name).write_bytes(text.encode("utf-8"))
                paths.append(work / name)
            refs = cas.put_files(paths)
            expected = [d for files in blobs for d in files.values()]
            if [ref.digest for ref in refs[: len(expected)]] != expected:
                raise InvalidState(
                    f"the output files of step {spec.node_id!r} changed while being stored"
                )
        return StepOutcome(
            spec.node_id, outputs, blobs, logs, started, time.perf_counter() - clock,
        )  # fmt: skip
    except Exception as exc:  # the step's error is data for the runner
        failure = StepFailure(
            type=_type_name(exc),
            message=str(exc),
            traceback="".join(traceback.format_exception(exc)),
        )
        return StepOutcome(
            spec.node_id, logs=captured.getvalue(), started_at=started,
            seconds=time.perf_counter() - clock, failure=failure,
        )  # fmt: skip
