"""A pipeline's DAG: step calls, the references between them, and the checks made before a run.

A ``Graph`` is usually built by ``Pipeline.graph(**params)``, which traces the pipeline function;
it can also be built by hand from ``StepCall`` records. Either way it is checked when it is made:
node ids are unique, every argument names a parameter of its step and every required parameter
is given, literal arguments are JSON-able, references point at existing nodes and outputs, the
producer's return type fits the consumer's parameter type, and there is no cycle. Tracing cannot
make a cycle (a step can only consume outputs of calls made before it), but a hand-built graph
can, so the check is here rather than in the tracer.

Argument values of a ``StepCall`` are one of:

- a JSON-able literal (``None``, bools, ints, finite floats, strings, and lists or string-keyed
  dicts of those);
- a ``Ref`` to another node's output (``index`` picks one element of a tuple output);
- a list, or a string-keyed dict, whose items are ``Ref``s or literals (one level only).
"""

from __future__ import annotations

import collections.abc
import functools
import heapq
import json
import math
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput
from mloop.pipelines.code_digest import CodeDigest, code_digest

if TYPE_CHECKING:
    from mloop.pipelines.steps import Step, StepOptions

__all__ = ["Edge", "Graph", "Ref", "StepCall", "check_call", "json_problem"]

_FORMAT = "mloop-graph/1"
_NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Ref:
    """A reference to the output of node ``node``; ``index`` picks an element of a tuple output."""

    node: str
    index: int | None = None

    def __str__(self) -> str:
        return self.node if self.index is None else f"{self.node}[{self.index}]"


@dataclass(frozen=True)
class Edge:
    """Data flowing from ``source``'s output (``output`` index, if a tuple) into ``argument``."""

    source: str
    target: str
    argument: str
    output: int | None = None


@dataclass(frozen=True, eq=False)
class StepCall:
    """One call of a step in a pipeline: a node of the graph, with its arguments bound by name.

    Only arguments given at the call are recorded; defaults stay in the function, whose source
    (defaults included) is part of ``code_digest``.
    """

    id: str
    step: Step[..., Any]
    args: Mapping[str, Any]

    @property
    def options(self) -> StepOptions:
        """The step's options (retries, timeout, resources, caching …)."""
        return self.step.options

    @functools.cached_property
    def code_digest(self) -> CodeDigest:
        """The digest of the step's code and the project code it reaches (computed once)."""
        return code_digest(self.step.func)

    @property
    def refs(self) -> list[tuple[str, Ref]]:
        """Every (argument, reference) pair, in argument order, containers flattened."""
        found: list[tuple[str, Ref]] = []
        for name, value in self.args.items():
            found.extend((name, ref) for ref in _refs_in(value))
        return found

    @property
    def upstream_ids(self) -> list[str]:
        """Ids of the nodes this call reads from, each once, in argument order."""
        return list(dict.fromkeys(ref.node for _, ref in self.refs))

    @property
    def literal_args(self) -> dict[str, Any]:
        """The arguments that hold no reference: plain JSON values."""
        return {k: v for k, v in self.args.items() if not _refs_in(v)}

    def canonical_args(self) -> str:
        """All arguments as canonical JSON (sorted keys, no spaces), references tagged."""
        return canonical_json({k: _encode(v) for k, v in self.args.items()})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description of this call (no code digest: that reads source files)."""
        func = self.step.func
        return {
            "id": self.id,
            "step": self.step.name,
            "function": f"{func.__module__}:{func.__qualname__}",
            "options": self.options.to_dict(),
            "args": {k: _encode(v) for k, v in self.args.items()},
            "outputs": self.step.output_count,
        }


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace; NaN and infinities refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def json_problem(value: Any, *, depth: int = 0) -> str | None:
    """Why ``value`` is not a JSON-able literal, or None if it is."""
    if depth > 64:
        return "it is nested too deeply"
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    if isinstance(value, list):
        for item in value:
            problem = json_problem(item, depth=depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"dict key {key!r} is not a string"
            problem = json_problem(item, depth=depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, tuple):
        return "a tuple would come back as a list; pass a list"
    return f"a {type(value).__module__}.{type(value).__qualname__} is not JSON"


def _refs_in(value: Any) -> list[Ref]:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Ref)]
    if isinstance(value, dict):
        return [item for item in value.values() if isinstance(item, Ref)]
    return []


def _encode_ref(ref: Ref) -> dict[str, Any]:
    return {"ref": ref.node, "output": ref.index}


def _encode(value: Any) -> dict[str, Any]:
    """Tag a bound argument so that references and literals cannot be confused in JSON."""
    if isinstance(value, Ref):
        return _encode_ref(value)
    if isinstance(value, list) and _refs_in(value):
        items = [_encode_ref(v) if isinstance(v, Ref) else {"value": v} for v in value]
        return {"list": items}
    if isinstance(value, dict) and _refs_in(value):
        entries = {
            k: _encode_ref(v) if isinstance(v, Ref) else {"value": v} for k, v in value.items()
        }
        return {"dict": entries}
    return {"value": value}


# --- checks -----------------------------------------------------------------------------------


def check_call(call: StepCall, known: Mapping[str, StepCall]) -> None:
    """Check one call's arguments against its step and the nodes it reads from (``known``)."""
    step, where = call.step, f"step {call.id!r}"
    params = step.signature.parameters
    for name in call.args:
        if name not in params:
            choices = ", ".join(params) or "none"
            raise InvalidInput(
                f"{where}: unknown argument {name!r}; {step.name}() takes: {choices}",
                step=call.id,
                argument=name,
            )
    missing = [
        p.name
        for p in params.values()
        if p.default is p.empty and p.name not in call.args and p.kind is not p.VAR_KEYWORD
    ]
    if missing:
        raise InvalidInput(
            f"{where}: missing required argument {missing[0]!r}"
            + (f" (and {', '.join(map(repr, missing[1:]))})" if missing[1:] else "")
            + f"; pass it when calling {step.name}() in the pipeline",
            step=call.id,
            argument=missing[0],
        )
    hints = step.type_hints
    for name, value in call.args.items():
        _check_value(call, name, value, hints.get(name), known)


def _check_value(
    call: StepCall, name: str, value: Any, expected: Any, known: Mapping[str, StepCall]
) -> None:
    where = f"step {call.id!r}, argument {name!r}"
    if isinstance(value, Ref):
        _check_ref(call, name, value, expected, known)
        return
    if isinstance(value, (list, dict)) and _refs_in(value):
        items = value if isinstance(value, list) else list(value.values())
        if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
            raise InvalidInput(f"{where}: dict keys must be strings", step=call.id, argument=name)
        element = _element_type(expected, dict_values=isinstance(value, dict))
        for item in items:
            if isinstance(item, Ref):
                _check_ref(call, name, item, element, known)
            else:
                _check_literal(where, call, name, item, element)
        return
    _check_literal(where, call, name, value, expected)


def _check_literal(where: str, call: StepCall, name: str, value: Any, expected: Any) -> None:
    problem = json_problem(value)
    if problem:
        raise InvalidInput(
            f"{where}: {problem}. Literal arguments and pipeline parameters must be JSON "
            "(None, bool, int, finite float, str, lists and string-keyed dicts of those); "
            "produce anything else in a step and pass that step's output instead",
            step=call.id,
            argument=name,
        )
    if _json_annotation(expected) and not types_compatible(type(value), expected):
        raise InvalidInput(
            f"{where}: expects {_type_name(expected)} but got {value!r} ({type(value).__name__})",
            step=call.id,
            argument=name,
        )


_JSON_TYPES = (type(None), bool, int, float, str, list, dict)


def _json_annotation(tp: Any) -> bool:
    """Whether ``tp`` is built only from JSON's own types, so that a literal can be checked.

    Other annotations (``Path``, an enum, a DataFrame) are left alone: a function may well
    convert a string or a number itself.
    """
    if _is_union(tp):
        return all(_json_annotation(member) for member in typing.get_args(tp))
    origin = typing.get_origin(tp) or tp
    return origin in _JSON_TYPES


def _check_ref(
    call: StepCall, name: str, ref: Ref, expected: Any, known: Mapping[str, StepCall]
) -> None:
    where = f"step {call.id!r}, argument {name!r}"
    source = known.get(ref.node)
    if source is None:
        raise InvalidInput(
            f"{where}: refers to node {ref.node!r}, which is not in the graph",
            step=call.id,
            argument=name,
        )
    count = source.step.output_count
    if ref.index is not None and (count is None or not 0 <= ref.index < count):
        outputs = "one output" if count is None else f"{count} outputs"
        raise InvalidInput(
            f"{where}: refers to output {ref.index} of {ref.node!r}, which has {outputs}",
            step=call.id,
            argument=name,
        )
    produced = source.step.output_type(ref.index)
    if not types_compatible(produced, expected):
        raise InvalidInput(
            f"{where}: expects {_type_name(expected)} but {ref} returns "
            f"{_type_name(produced)}; fix the annotations or convert in a step",
            step=call.id,
            argument=name,
        )


_MISSING = object()


def types_compatible(produced: Any, expected: Any) -> bool:
    """Whether a value annotated ``produced`` may be passed where ``expected`` is annotated.

    Only certain mismatches are refused: both sides must be concrete classes (or generic aliases,
    compared by their origin class) for the check to apply. Missing annotations, ``Any``,
    ``object``, type variables, protocols and strings that could not be resolved all pass. A
    union on either side passes if any member fits (``Optional[X]`` included). Classes are
    compared with ``issubclass``, so numpy and pandas types match by class identity or
    subclassing, without mloop importing them; ``int`` fits ``float`` and ``complex`` (PEP 484).
    """
    if produced in (None, _MISSING, Any) or expected in (None, _MISSING, Any, object):
        return True
    if _is_union(expected):
        return any(types_compatible(produced, member) for member in typing.get_args(expected))
    if _is_union(produced):
        return any(types_compatible(member, expected) for member in typing.get_args(produced))
    produced_cls = typing.get_origin(produced) or produced
    expected_cls = typing.get_origin(expected) or expected
    if not isinstance(produced_cls, type) or not isinstance(expected_cls, type):
        return True  # TypeVar, Literal, NewType, forward references: not checked
    if expected_cls is float and issubclass(produced_cls, int):
        return True
    if expected_cls is complex and issubclass(produced_cls, (int, float)):
        return True
    try:
        return issubclass(produced_cls, expected_cls)
    except TypeError:  # a non-runtime Protocol, or another class that refuses issubclass
        return True


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _element_type(container: Any, *, dict_values: bool) -> Any:
    """The item type of ``list[X]`` / ``Sequence[X]`` or value type of ``dict[K, V]``, if known."""
    origin, args = typing.get_origin(container), typing.get_args(container)
    if not isinstance(origin, type) or not args:
        return None
    if dict_values and issubclass(origin, collections.abc.Mapping) and len(args) == 2:
        return args[1]
    if not dict_values and issubclass(origin, collections.abc.Iterable):
        if origin is tuple:
            return args[0] if len(args) == 2 and args[1] is Ellipsis else None
        return args[0]
    return None


def _type_name(tp: Any) -> str:
    if tp is None:
        return "anything"
    if isinstance(tp, type) and not typing.get_args(tp):
        return (
            tp.__qualname__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"
        )
    return repr(tp).replace("typing.", "")


# --- the graph --------------------------------------------------------------------------------


class Graph:
    """A checked DAG of step calls; nodes keep the order in which they were called."""

    def __init__(
        self,
        nodes: Iterable[StepCall],
        *,
        name: str = "pipeline",
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.params: dict[str, Any] = dict(params or {})
        self._nodes: dict[str, StepCall] = {}
        for node in nodes:
            if not isinstance(node.id, str) or not _NODE_ID.match(node.id):
                raise InvalidInput(
                    f"node id {node.id!r} is not valid: use letters, digits, '_', '.', '-'",
                    step=str(node.id),
                )
            if node.id in self._nodes:
                raise InvalidInput(f"two nodes have the id {node.id!r}", step=node.id)
            self._nodes[node.id] = node
        if not self._nodes:
            raise InvalidInput(f"pipeline {name!r} has no steps")
        for key, value in self.params.items():
            problem = json_problem(value)
            if problem:
                raise InvalidInput(
                    f"pipeline {name!r}, parameter {key!r}: {problem}", parameter=key
                )
        for node in self._nodes.values():
            check_call(node, self._nodes)
        self._position = {node_id: i for i, node_id in enumerate(self._nodes)}
        self._down: dict[str, list[str]] = {node_id: [] for node_id in self._nodes}
        for node in self._nodes.values():
            for up in node.upstream_ids:
                self._down[up].append(node.id)
        self._order = self._sort()
        # One code digest per step object of this graph, shared by all its calls (a chain of
        # 100 calls of one step digests its code once); see code_digest().
        self._digests: dict[Step[..., Any], CodeDigest] = {}

    def code_digest(self, node: StepCall | str) -> CodeDigest:
        """The code digest of a node's step, computed once per step for the whole graph (every
        call of one step shares it; a new graph, e.g. a new run's trace, computes it afresh)."""
        call = node if isinstance(node, StepCall) else self[node]
        # StepCall.code_digest is a cached_property: its value lives in the call's __dict__.
        digest: CodeDigest | None = call.__dict__.get("code_digest")
        if digest is None:
            digest = self._digests.get(call.step)
            if digest is None:
                digest = call.code_digest
            else:
                call.__dict__["code_digest"] = digest
        self._digests.setdefault(call.step, digest)
        return digest

    def _sort(self) -> list[str]:
        """Kahn's algorithm, always taking the earliest-called ready node: deterministic."""
        waiting = {node_id: len(node.upstream_ids) for node_id, node in self._nodes.items()}
        ready = [self._position[n] for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        ids = list(self._nodes)
        order: list[str] = []
        while ready:
            node_id = ids[heapq.heappop(ready)]
            order.append(node_id)
            for down in self._down[node_id]:
                waiting[down] -= 1
                if waiting[down] == 0:
                    heapq.heappush(ready, self._position[down])
        if len(order) < len(ids):
            raise InvalidInput(
                f"pipeline {self.name!r} has a cycle: {' -> '.join(self._find_cycle(waiting))}",
                cycle=self._find_cycle(waiting),
            )
        return order

    def _find_cycle(self, waiting: Mapping[str, int]) -> list[str]:
        """One cycle among the nodes Kahn's algorithm could not place, for the message."""
        stuck = [n for n, count in waiting.items() if count > 0]
        path: list[str] = []
        node_id = min(stuck, key=self._position.__getitem__)
        while node_id not in path:
            path.append(node_id)
            node_id = next(u for u in self._nodes[node_id].upstream_ids if waiting[u] > 0)
        cycle = path[path.index(node_id) :]
        cycle.reverse()  # upstream first, so that arrows point the way data flows
        start = min(range(len(cycle)), key=lambda i: self._position[cycle[i]])
        cycle = cycle[start:] + cycle[:start]  # from the earliest-called node: stable
        return [*cycle, cycle[0]]

    # -- access --

    def __getitem__(self, node_id: str) -> StepCall:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise InvalidInput(
                f"pipeline {self.name!r} has no node {node_id!r}; nodes: {', '.join(self._nodes)}",
                step=node_id,
            ) from None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __iter__(self) -> Iterator[StepCall]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, nodes={list(self._nodes)})"

    @property
    def nodes(self) -> list[StepCall]:
        """Every node, in call order."""
        return list(self._nodes.values())

    @property
    def edges(self) -> list[Edge]:
        """Every data dependency, by target in call order, then argument order."""
        return [
            Edge(source=ref.node, target=node.id, argument=arg, output=ref.index)
            for node in self._nodes.values()
            for arg, ref in node.refs
        ]

    def topological_order(self) -> list[StepCall]:
        """Nodes so that each comes after those it reads; ties broken by call order."""
        return [self._nodes[n] for n in self._order]

    @property
    def roots(self) -> list[StepCall]:
        """Nodes that read from no other node."""
        return [n for n in self._nodes.values() if not n.upstream_ids]

    @property
    def leaves(self) -> list[StepCall]:
        """Nodes that no other node reads from."""
        return [n for n in self._nodes.values() if not self._down[n.id]]

    def upstream(self, node_id: str, *, transitive: bool = False) -> list[StepCall]:
        """The nodes ``node_id`` reads from (all ancestors if ``transitive``), in topo order."""
        return self._walk(node_id, lambda n: self._nodes[n].upstream_ids, transitive)

    def downstream(self, node_id: str, *, transitive: bool = False) -> list[StepCall]:
        """The nodes reading ``node_id`` (all descendants if ``transitive``), in topo order."""
        return self._walk(node_id, lambda n: self._down[n], transitive)

    def _walk(
        self, node_id: str, neighbours: typing.Callable[[str], Sequence[str]], transitive: bool
    ) -> list[StepCall]:
        _ = self[node_id]  # a clear error for an unknown id
        seen: set[str] = set()
        todo = list(neighbours(node_id))
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            if transitive:
                todo.extend(neighbours(current))
        return [self._nodes[n] for n in self._order if n in seen]

    def levels(self) -> list[list[StepCall]]:
        """Nodes grouped by depth (longest path from a root): each level can run in parallel."""
        depth: dict[str, int] = {}
        for node_id in self._order:
            ups = self._nodes[node_id].upstream_ids
            depth[node_id] = 1 + max((depth[u] for u in ups), default=-1)
        grouped: list[list[StepCall]] = [[] for _ in range(max(depth.values()) + 1)]
        for node_id, node in self._nodes.items():
            grouped[depth[node_id]].append(node)
        return grouped

    # -- output --

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (for storage and the CLI); equal for equal pipelines."""
        return {
            "format": _FORMAT,
            "pipeline": self.name,
            "params": self.params,
            "nodes": [node.to_dict() for node in self.topological_order()],
            "edges": [
                {"source": e.source, "target": e.target, "argument": e.argument, "output": e.output}
                for e in self.edges
            ],
        }

    def describe(self) -> str:
        """A short text picture: one line per node in run order, with its inputs and options."""
        lines = [f"pipeline {self.name} ({len(self)} steps, {len(self.levels())} levels)"]
        if self.params:
            lines.append("  params: " + ", ".join(f"{k}={v!r}" for k, v in self.params.items()))
        width = max(len(n) for n in self._nodes)
        for node in self.topological_order():
            args = ", ".join(f"{k}={_show(v)}" for k, v in node.args.items())
            text = f"  {node.id:<{width}}  {node.step.name}({args})"
            opts = node.options.non_defaults()
            if opts:
                text += "  [" + ", ".join(f"{k}={v!r}" for k, v in opts.items()) + "]"
            lines.append(text.rstrip())
        return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, Ref):
        return f"<{value}>"
    if isinstance(value, list) and _refs_in(value):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict) and _refs_in(value):
        return "{" + ", ".join(f"{k!r}: {_show(v)}" for k, v in value.items()) + "}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
