"""Running a pipeline: graph order, the step cache, tracked runs, retries, timeouts, resume.

``run_pipeline`` (and ``Pipeline.run``) traces the pipeline into its checked graph, starts one
tracked run for the pipeline (experiment = the pipeline's name) and submits every *ready* step
(all upstream steps done) to an executor, up to its ``max_parallel``. Each step gets a child
run named after its node id, holding its inputs (literal arguments as params, upstream output
digests as ``mloop.step.input.<arg>`` tags), its outputs (artifacts ``outputs/<i>/<file>``
pointing at the digests the worker stored — no second copy — and ``outputs.json``, the
records), its timing (metric ``seconds``), its captured output (``logs.txt``) and its status;
the output references are written with the child run's end, in one transaction.

Before a step runs its *cache key* is computed: the SHA-256 of canonical JSON over the step's
code digest, its literal arguments and its inputs' content digests (minus ``ignore_inputs``),
the materialiser versions, its ``cache_version`` and the cache format. A live cache entry for
that key (not expired, its blobs still stored) means the step is skipped and its recorded
outputs are used; the child run is still recorded, tagged ``mloop.step.cached=true`` and
``mloop.step.cached_from=<run id>``. When a step re-runs although an earlier result of it is
cached, :func:`explain_rerun` names which part of the key changed (for code: which function);
the reasons are tagged ``mloop.step.why_rerun`` and stored as ``why_rerun.txt``.

A step that fails after its retries fails the pipeline run: steps already running finish and are
recorded, nothing downstream starts (those nodes get no child run; their ``StepResult`` has
``status=None``), the pipeline run ends FAILED and :class:`StepFailed` is raised, naming the
step and carrying the step's original traceback. ``resume(run_id)`` runs the same pipeline with
the failed run's params, reusing every step whose cache key matches one that finished in that
run (through the cache, or from the failed run's records when the step has ``cache=False``).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import importlib
import json
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, InvalidState, MloopError, NotFound
from mloop.pipelines.code_digest import CodeDigest
from mloop.pipelines.execution import (
    StepFailure,
    StepOutcome,
    StepSpec,
    _type_name,
    outputs_json,
    step_ref,
)
from mloop.pipelines.executors import Executor, open_executor, timed_out
from mloop.pipelines.graph import Ref, StepCall, canonical_json
from mloop.pipelines.materialisers import OutputRecord, dematerialise, registered_materialisers
from mloop.pipelines.scratch import scratch
from mloop.store.records import DatasetKind, NewDatasetVersion, RunStatus, StepCacheEntry

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mloop.pipelines.graph import Graph
    from mloop.pipelines.steps import Pipeline
    from mloop.tracking.client import TrackingClient
    from mloop.tracking.run import ActiveRun

__all__ = [
    "CACHE_FORMAT",
    "PipelineResult",
    "StepFailed",
    "StepResult",
    "cache_key",
    "explain_rerun",
    "import_pipeline",
    "pipeline_ref",
    "run_pipeline",
]

#: The version of the cache key's recipe; part of every key.
CACHE_FORMAT = "mloop-step-cache/1"
_TAG = "mloop.step."
#: Materialisers whose output is one table, recorded as a dataset version; its file.
TABLE_MATERIALISERS = frozenset({"pandas", "arrow", "polars"})
TABLE_BLOB = "table.parquet"
_MAX_TAG = 8_000
_MAX_PARAM = 6_000


class StepFailed(MloopError):
    """A pipeline step failed (after its retries); the pipeline run is FAILED.

    ``node_id`` names the step, ``failure`` holds the original exception's type, message and
    traceback text, ``result`` the whole run's :class:`PipelineResult`.
    """

    http_status = 500

    def __init__(self, result: PipelineResult, node_id: str, failure: StepFailure) -> None:
        super().__init__(
            f"step {node_id!r} of pipeline {result.pipeline!r} failed (run {result.run_id}): "
            f"{failure.type}: {failure.message}\n\nOriginal traceback:\n{failure.traceback}"
            f"Resume with {result.pipeline}.resume({result.run_id!r}) once it is fixed.",
            run_id=result.run_id,
            step=node_id,
        )
        self.result = result
        self.node_id = node_id
        self.failure = failure


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """How one node went: ``status`` is None when it never ran (downstream of a failure)."""

    node_id: str
    status: RunStatus | None
    run_id: str | None = None
    cached: bool = False
    attempts: int = 0
    seconds: float = 0.0
    outputs: list[OutputRecord] = field(default_factory=list)
    blobs: list[dict[str, str]] = field(default_factory=list)
    cache_key: str | None = None
    why_rerun: list[str] = field(default_factory=list)
    failure: StepFailure | None = None


@dataclass(frozen=True)
class PipelineResult:
    """A pipeline run: its tracked run id, final status and each node's :class:`StepResult`."""

    run_id: str
    pipeline: str
    status: RunStatus
    steps: dict[str, StepResult]
    client: TrackingClient = field(repr=False)

    def __getitem__(self, node_id: str) -> StepResult:
        return self._step(node_id)

    def _step(self, node_id: str) -> StepResult:
        found = self.steps.get(node_id)
        if found is None:
            raise NotFound(
                f"pipeline {self.pipeline!r} has no node {node_id!r}; nodes: "
                f"{', '.join(self.steps)}",
                step=node_id,
            )
        return found

    def output(self, node_id: str, index: int | None = None, *, trusted: bool = False) -> Any:
        """Load a node's output back from the artifact store, every file verified first
        (a tuple of all outputs for a several-output step when ``index`` is None)."""
        result = self._step(node_id)
        if result.status is not RunStatus.FINISHED:
            what = "never ran" if result.status is None else "failed"
            raise InvalidState(
                f"step {node_id!r} has no outputs: it {what} in run {self.run_id}", step=node_id
            )
        indexes = [index] if index is not None else list(range(len(result.outputs)))
        with scratch() as work:
            values = []
            for i in indexes:
                if not 0 <= i < len(result.outputs):
                    raise InvalidInput(f"step {node_id!r} has {len(result.outputs)} output(s)")
                folder = work / str(i)
                self.client.artifacts.download_many(
                    [(digest, folder / rel) for rel, digest in result.blobs[i].items()]
                )
                values.append(dematerialise(folder, result.outputs[i], trusted=trusted))
        return values[0] if index is not None or len(values) == 1 else tuple(values)


# --- the cache key ----------------------------------------------------------------------------


def _key_parts(
    call: StepCall, inputs: Mapping[str, OutputRecord], code: CodeDigest | None = None
) -> dict[str, Any]:
    """What goes into a step's cache key (``code_parts`` is kept for why-rerun, not hashed);
    ``code`` is the step's code digest when the caller has it (the graph's, shared by calls)."""
    ignored = set(call.options.ignore_inputs)
    code = call.code_digest if code is None else code
    return {
        "format": CACHE_FORMAT,
        "code": code.digest,
        "code_parts": dict(code.parts),
        "params": {k: v for k, v in sorted(call.literal_args.items()) if k not in ignored},
        "inputs": {
            name: {"digest": r.digest, "materialiser": r.materialiser, "version": r.version}
            for name, r in sorted(inputs.items())
            if name not in ignored
        },
        "materialisers": {m.name: m.version for m in registered_materialisers()},
        "cache_version": call.options.cache_version,
    }


def cache_key(parts: Mapping[str, Any]) -> str:
    """The SHA-256 of the canonical JSON of a step's key parts (``code_parts`` left out: the
    code digest already covers them)."""
    hashed = {k: v for k, v in parts.items() if k != "code_parts"}
    return hashlib.sha256(canonical_json(hashed).encode()).hexdigest()


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _compare(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines = []
    for name in sorted(old.keys() | new.keys()):
        if name not in old:
            lines.append(f"{kind} {name!r} added: {_short(new[name])}")
        elif name not in new:
            lines.append(f"{kind} {name!r} removed (was {_short(old[name])})")
        elif old[name] != new[name]:
            lines.append(f"{kind} {name!r} changed: {_short(old[name])} -> {_short(new[name])}")
    return lines


def explain_rerun(step_name: str, parts: Mapping[str, Any], client: TrackingClient) -> list[str]:
    """Why a step with these key parts does not reuse the latest cached result of
    ``step_name`` (the cache name ``<pipeline>/<node id>``): one line per changed part."""
    previous = client.store.latest_step_cache(step_name)
    if previous is None:
        return ["no earlier result of this step is cached"]
    old = previous.parts
    if cache_key(old) == cache_key(parts):
        if client.store.get_step_cache(previous.cache_key, now=_now_ms()):
            return ["the cached outputs are no longer in the artifact store"]
        return [f"the cached result of run {previous.run_id} expired"]
    reasons: list[str] = []
    if old.get("format") != parts.get("format"):
        reasons.append(f"cache format changed: {old.get('format')} -> {parts.get('format')}")
    if old.get("code") != parts.get("code"):
        before = CodeDigest(str(old.get("code")), dict(old.get("code_parts") or {}))
        after = CodeDigest(str(parts.get("code")), dict(parts.get("code_parts") or {}))
        changes = before.diff(after)
        reasons += [f"code {line}" for line in changes] or ["code changed"]
    reasons += _compare("param", old.get("params") or {}, parts.get("params") or {})
    old_inputs, new_inputs = old.get("inputs") or {}, parts.get("inputs") or {}
    for name in sorted(old_inputs.keys() | new_inputs.keys()):
        a, b = old_inputs.get(name), new_inputs.get(name)
        if a == b:
            continue
        if a is None or b is None:
            reasons.append(f"input {name!r} {'added' if a is None else 'removed'}")
        elif a.get("digest") != b.get("digest"):
            reasons.append(
                f"input {name!r} changed: digest {str(a.get('digest'))[:12]}… -> "
                f"{str(b.get('digest'))[:12]}…"
            )
        else:
            reasons.append(
                f"input {name!r} read by another materialiser: {a.get('materialiser')} "
                f"v{a.get('version')} -> {b.get('materialiser')} v{b.get('version')}"
            )
    reasons += _compare(
        "materialiser", old.get("materialisers") or {}, parts.get("materialisers") or {}
    )
    if old.get("cache_version") != parts.get("cache_version"):
        reasons.append(
            f"cache_version changed: {old.get('cache_version')!r} -> {parts.get('cache_version')!r}"
        )
    return reasons or ["the cache key changed"]


# --- running ----------------------------------------------------------------------------------


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    if len(text) > _MAX_PARAM:  # too long for a param: the digest still identifies it
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def _system_tags(run: ActiveRun, tags: Mapping[str, Any]) -> None:
    """Set tags under the reserved ``mloop.`` prefix: the runner is mloop recording itself."""
    from mloop.tracking.names import tag_value, validate_key
    from mloop.tracking.writer import TAG

    rows = [(validate_key(k, "tag", system=True), tag_value(k, v)) for k, v in tags.items()]
    for key, text in rows:
        run.client.writer.log((TAG, run.id, key, text))


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TAG else text[: _MAX_TAG - 3] + "..."


@dataclass
class _Node:
    """A step's progress through one run."""

    call: StepCall
    run: ActiveRun | None = None
    parts: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    spec: StepSpec | None = None
    attempts: int = 0
    logs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    why: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Reusable:
    """A step that finished in the run being resumed."""

    run_id: str
    outputs: list[dict[str, Any]]


class _Runner:
    """One pipeline run: schedules ready nodes on the executor and records everything."""

    def __init__(
        self,
        graph: Graph,
        client: TrackingClient,
        root: ActiveRun,
        executor: Executor,
        *,
        reusable: dict[str, _Reusable],
        allow_pickle: bool,
    ) -> None:
        self.graph, self.client, self.root, self.executor = graph, client, root, executor
        self.reusable = reusable
        self.allow_pickle = allow_pickle
        self.results: dict[str, StepResult] = {}
        self.nodes = {call.id: _Node(call) for call in graph.topological_order()}
        self.order = {node_id: i for i, node_id in enumerate(self.nodes)}
        self.in_flight: dict[Future[StepOutcome], str] = {}
        self.retries: list[tuple[float, int, str]] = []  # (due, order, node id)
        self.failed: tuple[str, StepFailure] | None = None
        self.table_versions: dict[tuple[str, int], int] = {}  # (node, output) -> version id
        self.scratch = contextlib.ExitStack()  # the staging folder, removed when the run ends
        self.staging: Path | None = None

    # -- the loop --
    def run(self) -> None:
        with self.scratch:
            self._run()

    def _run(self) -> None:
        waiting = {n: set(node.call.upstream_ids) for n, node in self.nodes.items()}
        ready = self._newly_ready(waiting)
        try:
            while self.failed is None and (ready or self.in_flight or self.retries):
                while ready and self.failed is None and self._free():
                    self._start(ready.pop(0))
                    ready += self._newly_ready(waiting)
                while self.retries and self.retries[0][0] <= time.monotonic() and self._free():
                    _, _, node_id = heapq.heappop(self.retries)
                    self._submit(node_id)
                if self.in_flight:
                    self._collect()
                elif self.retries and not ready:
                    time.sleep(max(0.0, self.retries[0][0] - time.monotonic()))
                ready += self._newly_ready(waiting)
            while self.in_flight:  # after a failure: let running steps finish and record them
                self._collect()
        except BaseException as exc:
            status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            for node in self.nodes.values():
                if node.run is not None and not node.run.ended:
                    node.run.end(status)
            raise

    def _free(self) -> bool:
        return len(self.in_flight) < max(1, self.executor.max_parallel)

    def _newly_ready(self, waiting: dict[str, set[str]]) -> list[str]:
        done = {n for n, r in self.results.items() if r.status is RunStatus.FINISHED}
        found = []
        for node_id, deps in list(waiting.items()):
            if deps <= done:
                found.append(node_id)
                del waiting[node_id]
        return sorted(found, key=self.order.__getitem__)

    # -- starting a node --
    def _inputs(self, call: StepCall) -> dict[str, tuple[Ref, OutputRecord, dict[str, str]]]:
        found = {}
        for name, value in call.args.items():
            if isinstance(value, Ref):
                upstream = self.results[value.node]
                index = value.index or 0
                found[name] = (value, upstream.outputs[index], upstream.blobs[index])
        return found

    def _start(self, node_id: str) -> None:
        node = self.nodes[node_id]
        call = node.call
        inputs = self._inputs(call)
        node.parts = _key_parts(
            call, {name: rec for name, (_, rec, _) in inputs.items()}, self.graph.code_digest(call)
        )
        node.key = cache_key(node.parts)
        cache_name = f"{self.graph.name}/{node_id}"
        run = self.client.start_run(run_name=node_id, parent=self.root, capture_source=False)
        node.run = run
        _system_tags(
            run,
            {
                _TAG + "node": node_id,
                _TAG + "name": call.step.name,
                _TAG + "function": step_ref(call.step),
                _TAG + "cache_key": node.key,
            },
        )
        _system_tags(self.root, {f"mloop.pipeline.step.{node_id}": run.id})
        run.log_params({k: _param_text(v) for k, v in call.literal_args.items()})
        _system_tags(
            run,
            {
                f"{_TAG}input.{name}": f"{ref} {rec.digest}"
                for name, (ref, rec, _) in inputs.items()
            },
        )
        if call.options.cache:
            entry = self.client.store.get_step_cache(node.key, now=_now_ms())
            if entry is not None and self._blobs_present(entry.outputs):
                self._finish_cached(node, entry.run_id, entry.outputs)
                return
            if self.client.store.latest_step_cache(cache_name) is not None:
                node.why = explain_rerun(cache_name, node.parts, self.client)
        reused = self.reusable.get(node.key)
        if reused is not None and self._blobs_present(reused.outputs):
            self._finish_cached(node, reused.run_id, reused.outputs)
            return
        if node.why:
            _system_tags(run, {_TAG + "why_rerun": _clip("; ".join(node.why))})
            run.log_text("\n".join(node.why) + "\n", "why_rerun.txt")
        arguments: dict[str, dict[str, Any]] = {
            name: {"literal": value} for name, value in call.literal_args.items()
        }
        for name, (_, record, blobs) in inputs.items():
            arguments[name] = {"output": record.to_dict(), "blobs": dict(blobs)}
        node.spec = StepSpec(
            node_id=node_id,
            step=step_ref(call.step),
            arguments=arguments,
            artifact_uri=self.client.settings.artifact_uri,
            allow_pickle=self.allow_pickle,
            trusted=self.allow_pickle,
        )
        self._submit(node_id)

    def _blobs_present(self, outputs: list[dict[str, Any]]) -> bool:
        digests = sorted({d for out in outputs for d in out.get("blobs", {}).values()})
        return len(self.client.artifacts.exists(digests)) == len(digests)

    def _submit(self, node_id: str) -> None:
        node = self.nodes[node_id]
        assert node.spec is not None
        node.attempts += 1
        spec = replace(node.spec, attempt=node.attempts)
        options = node.call.options
        future = self.executor.submit(
            spec, resources=dict(options.resources), timeout=options.timeout
        )
        self.in_flight[future] = node_id

    # -- collecting outcomes --
    def _collect(self) -> None:
        due = self.retries[0][0] - time.monotonic() if self.retries and self._free() else None
        wait_for = None if due is None else max(0.0, due)
        done, _ = wait(list(self.in_flight), timeout=wait_for, return_when=FIRST_COMPLETED)
        for future in sorted(done, key=lambda f: self.order[self.in_flight[f]]):
            self._outcome(self.in_flight.pop(future), future)

    def _outcome(self, node_id: str, future: Future[StepOutcome]) -> None:
        try:
            outcome = future.result()
        except Exception as exc:  # the executor's contract is an outcome; be safe anyway
            outcome = StepOutcome(
                node_id,
                failure=StepFailure(
                    type=_type_name(exc),
                    message=f"the executor lost the step: {exc}",
                    traceback="".join(traceback.format_exception(exc)),
                ),
            )
        node = self.nodes[node_id]
        timeout = node.call.options.timeout
        if outcome.ok and timeout is not None and outcome.seconds > timeout:
            assert node.spec is not None  # an executor that does not enforce timeouts
            outcome = timed_out(node.spec, timeout, outcome.logs, outcome.seconds)
        if outcome.failure is not None:
            self._attempt_failed(node_id, outcome.failure, outcome.seconds, outcome.logs)
            return
        node.logs.append(outcome.logs)
        node.seconds += outcome.seconds
        self._finish_ran(node, outcome)

    def _attempt_failed(
        self, node_id: str, failure: StepFailure, seconds: float, logs: str
    ) -> None:
        node = self.nodes[node_id]
        node.logs.append(logs)
        node.seconds += seconds
        options = node.call.options
        if node.attempts <= options.retries and self.failed is None:
            delay = options.retry_backoff * 2 ** (node.attempts - 1)
            due = time.monotonic() + delay
            heapq.heappush(self.retries, (due, self.order[node_id], node_id))
            return
        self._finish_failed(node, failure)

    # -- recording --
    def _logs(self, node: _Node) -> str:
        if len(node.logs) <= 1:
            return "".join(node.logs)
        return "".join(f"--- attempt {i} ---\n{text}" for i, text in enumerate(node.logs, 1))

    def _output_refs(
        self, outputs: list[dict[str, Any]], texts: Mapping[str, str] = {}
    ) -> list[tuple[str, str, int]]:
        """Store a step run's ``outputs.json`` and text files in one blob batch; return the
        references to record with the run's end: those and its outputs' (already stored)."""
        entries = []
        for index, out in enumerate(outputs):
            record = OutputRecord.from_dict(out["record"])
            for rel, digest in sorted(out["blobs"].items()):
                entries.append((f"outputs/{index}/{rel}", digest, record.files[rel][1]))
        records = outputs_json([o["record"] for o in outputs], [o["blobs"] for o in outputs])
        files = {"outputs.json": records, **texts}
        data = {name: text.encode("utf-8") for name, text in files.items()}
        refs = {name: (hashlib.sha256(raw).hexdigest(), len(raw)) for name, raw in data.items()}
        cas = self.client.artifacts
        stored = cas.exists(sorted({digest for digest, _ in refs.values()}))
        missing = {refs[name][0]: raw for name, raw in data.items() if refs[name][0] not in stored}
        # The worker stored what it could (execute_step): usually nothing is missing here.
        if missing:  # only blobs not stored yet touch the disk, staged in the run's one folder
            cas.put_files([self._stage(digest, raw) for digest, raw in missing.items()])
        entries += [(name, digest, size) for name, (digest, size) in refs.items()]
        return entries

    def _stage(self, digest: str, data: bytes) -> Path:
        """A file holding ``data`` (whose SHA-256 is ``digest``) in this run's staging folder:
        one scratch folder for the whole run, not one per step (each costs a mkdir and its
        removal), named by digest so that a name never holds other bytes."""
        if self.staging is None:
            self.staging = self.scratch.enter_context(scratch())
        path = self.staging / digest
        path.write_bytes(data)
        return path

    def _register_tables(self, node: _Node, run: ActiveRun, outputs: list[dict[str, Any]]) -> None:
        """Record table outputs as dataset versions (``<pipeline>.<node>[.<index>]``, made by
        this step run, from the versions it read) and those inputs on the step run, so lineage
        runs from step to step. The Parquet blob is already stored: nothing is copied."""
        store, call = self.client.store, node.call
        read: list[tuple[int, str]] = []
        for name, (ref, _, _) in self._inputs(call).items():
            version_id = self.table_versions.get((ref.node, ref.index or 0))
            if version_id is not None:
                read.append((version_id, name[:64]))
        if read:
            store.log_run_inputs(run.id, read, actor=self.client.settings.actor)
        for index, out in enumerate(outputs):
            record = OutputRecord.from_dict(out["record"])
            blob = out["blobs"].get(TABLE_BLOB)
            meta = record.metadata
            if record.materialiser not in TABLE_MATERIALISERS or blob is None:
                continue
            size = record.files[TABLE_BLOB][1]
            suffix = f".{index}" if len(outputs) > 1 else ""
            new = NewDatasetVersion(
                digest=str(meta["digest"]), kind=DatasetKind.TABLE, storage_digest=blob,
                size=size, files=[("data.parquet", blob, size)],
                schema=[
                    {"name": n, "type": str(ty), "nullable": True}
                    for n, ty in zip(meta.get("columns", []), meta.get("types", []), strict=False)
                ],
                num_rows=int(meta.get("rows", 0)), parents=[v for v, _ in read], run_id=run.id,
                description=f"output {index} of step {call.id!r} of pipeline {self.graph.name!r}",
            )  # fmt: skip
            version, _ = store.create_dataset_version(
                f"{self.graph.name}.{call.id}{suffix}", new, actor=self.client.settings.actor
            )
            self.table_versions[(call.id, index)] = version.id

    def _finish_cached(self, node: _Node, from_run: str, outputs: list[dict[str, Any]]) -> None:
        assert node.run is not None
        run = node.run
        refs = self._output_refs(outputs)
        self._register_tables(node, run, outputs)
        _system_tags(
            run, {_TAG + "cached": "true", _TAG + "cached_from": from_run, _TAG + "attempts": 0}
        )
        run.end(RunStatus.FINISHED, artifacts=refs)  # references, tags and end: one transaction
        self.results[node.call.id] = StepResult(
            node.call.id, RunStatus.FINISHED, run.id, cached=True,
            outputs=[OutputRecord.from_dict(o["record"]) for o in outputs],
            blobs=[dict(o["blobs"]) for o in outputs], cache_key=node.key,
        )  # fmt: skip

    def _finish_ran(self, node: _Node, outcome: StepOutcome) -> None:
        assert node.run is not None
        run = node.run
        outputs = [
            {"record": record, "blobs": blobs}
            for record, blobs in zip(outcome.outputs, outcome.blobs, strict=True)
        ]
        refs = self._output_refs(outputs, {"logs.txt": self._logs(node)})
        self._register_tables(node, run, outputs)
        run.log_metrics({"seconds": node.seconds})
        _system_tags(run, {_TAG + "cached": "false", _TAG + "attempts": node.attempts})
        run.end(RunStatus.FINISHED, artifacts=refs)  # references, data and end: one transaction
        options = node.call.options
        if options.cache:
            created = _now_ms()
            expires = None if options.expire is None else created + int(options.expire * 1000)
            self.client.store.put_step_cache(
                StepCacheEntry(
                    cache_key=node.key, step=f"{self.graph.name}/{node.call.id}", run_id=run.id,
                    parts=node.parts, outputs=outputs, created_at=created, expires_at=expires,
                )
            )  # fmt: skip
        self.results[node.call.id] = StepResult(
            node.call.id, RunStatus.FINISHED, run.id, cached=False, attempts=node.attempts,
            seconds=node.seconds, outputs=[OutputRecord.from_dict(o) for o in outcome.outputs],
            blobs=[dict(b) for b in outcome.blobs], cache_key=node.key, why_rerun=node.why,
        )  # fmt: skip

    def _finish_failed(self, node: _Node, failure: StepFailure) -> None:
        assert node.run is not None
        run = node.run
        run.log_metrics({"seconds": node.seconds})
        run.log_text(self._logs(node), "logs.txt")
        run.log_text(failure.traceback, "error.txt")
        _system_tags(
            run,
            {
                _TAG + "cached": "false",
                _TAG + "attempts": node.attempts,
                _TAG + "error": _clip(f"{failure.type}: {failure.message}"),
            },
        )
        run.end(RunStatus.FAILED)
        self.results[node.call.id] = StepResult(
            node.call.id, RunStatus.FAILED, run.id, attempts=node.attempts,
            seconds=node.seconds, cache_key=node.key, why_rerun=node.why, failure=failure,
        )  # fmt: skip
        if self.failed is None:
            self.failed = (node.call.id, failure)
            self.retries.clear()


def _check_runnable(graph: Graph) -> None:
    for call in graph:
        for name, value in call.args.items():
            if not isinstance(value, Ref) and name not in call.literal_args:
                raise InvalidInput(
                    f"step {call.id!r}, argument {name!r}: the runner passes step outputs only "
                    "directly, not inside a list or dict; combine them in a step first",
                    step=call.id,
                    argument=name,
                )
        step_ref(call.step)  # shippable to a worker


def _resumable(
    client: TrackingClient, pipeline: Pipeline, run_id: str
) -> tuple[dict[str, Any], dict[str, _Reusable]]:
    """The params of a failed pipeline run and the steps that finished in it, by cache key."""
    run = client.get_run(client.resolve_run_id(run_id))
    name = run.tags.get("mloop.pipeline.name")
    if name is None:
        raise InvalidInput(f"run {run.id} is not a pipeline run (no tag mloop.pipeline.name)")
    if name != pipeline.name:
        raise InvalidInput(
            f"run {run.id} is a run of pipeline {name!r}, not {pipeline.name!r}; resume it "
            f"with {name}.resume(...)"
        )
    if run.status is RunStatus.FINISHED or run.status is RunStatus.RUNNING:
        raise InvalidState(
            f"run {run.id} is {run.status}: only a FAILED or KILLED pipeline run can be resumed"
        )
    graph_file = client.list_artifacts(run.id, "graph.json")
    if not graph_file:
        raise NotFound(f"run {run.id} has no graph.json to take its params from")
    params = json.loads(client.artifacts.get_bytes(graph_file[0].digest))["params"]
    reusable: dict[str, _Reusable] = {}
    children = [v for k, v in run.tags.items() if k.startswith("mloop.pipeline.step.")]
    for child in client.store.get_runs(children):
        key = child.tags.get(_TAG + "cache_key")
        if child.status is not RunStatus.FINISHED or key is None:
            continue
        found = client.list_artifacts(child.id, "outputs.json")
        if found:
            outputs = json.loads(client.artifacts.get_bytes(found[0].digest))["outputs"]
            reusable[key] = _Reusable(child.id, outputs)
    return params, reusable


def pipeline_ref(pipeline: Pipeline) -> str:
    """``module:name`` by which ``mloop pipelines resume`` imports the pipeline again."""
    func = pipeline.func
    return f"{func.__module__}:{func.__qualname__}"


def import_pipeline(ref: str) -> Pipeline:
    """Import ``module:attribute`` and return the pipeline it names."""
    from mloop.pipelines.steps import Pipeline

    module_name, sep, attribute = ref.partition(":") if isinstance(ref, str) else ("", "", "")
    if not sep or not module_name or not attribute:
        raise InvalidInput(f"pipeline {ref!r} is not MODULE:NAME (e.g. flows.training:training)")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotFound(
            f"cannot import module {module_name!r} for pipeline {ref!r}: {exc}"
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise NotFound(f"module {module_name!r} has no {attribute!r} (pipeline {ref!r})")
        target = getattr(target, part)
    if not isinstance(target, Pipeline):
        raise InvalidInput(f"{ref!r} is a {type(target).__name__}, not an @mloop.pipeline")
    return target


def run_pipeline(
    pipeline: Pipeline,
    params: Mapping[str, Any] | None = None,
    *,
    executor: str | Executor = "local",
    client: TrackingClient | None = None,
    max_workers: int | None = None,
    resume_from: str | None = None,
    allow_pickle: bool = False,
) -> PipelineResult:
    """Run ``pipeline`` with ``params`` as a tracked run; raise :class:`StepFailed` if a step
    fails. ``resume_from`` (a failed run of this pipeline) reuses its params and the steps that
    finished in it. ``allow_pickle`` lets outputs without a materialiser be pickled."""
    from mloop.tracking import default_client

    client = client or default_client()
    reusable: dict[str, _Reusable] = {}
    given = dict(params or {})
    if resume_from is not None:
        if given:
            raise InvalidInput("resume takes the failed run's params; do not pass params")
        given, reusable = _resumable(client, pipeline, resume_from)
    graph = pipeline.graph(**given)
    _check_runnable(graph)
    tags = {
        "mloop.pipeline.name": graph.name,
        "mloop.pipeline.graph": "graph.json",
        "mloop.pipeline.ref": pipeline_ref(pipeline),
    }
    if resume_from is not None:
        tags["mloop.pipeline.resumed_from"] = client.resolve_run_id(resume_from)
    chosen = open_executor(
        executor, max_parallel=max_workers, artifact_uri=client.settings.artifact_uri
    )
    try:
        root = client.start_run(graph.name)
        runner = _Runner(graph, client, root, chosen, reusable=reusable, allow_pickle=allow_pickle)
        try:
            _system_tags(root, tags)
            root.log_params({k: _param_text(v) for k, v in graph.params.items()})
            root.log_text(json.dumps(graph.to_dict(), indent=2, sort_keys=True), "graph.json")
            runner.run()
        except BaseException as exc:
            root.end(RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED)
            raise
        status = RunStatus.FAILED if runner.failed else RunStatus.FINISHED
        root.end(status)
    finally:
        if isinstance(executor, str):
            chosen.shutdown()
    steps = {n: runner.results.get(n, StepResult(n, None)) for n in runner.nodes}
    result = PipelineResult(root.id, graph.name, status, steps, client)
    if runner.failed is not None:
        raise StepFailed(result, *runner.failed)
    return result
