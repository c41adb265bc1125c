"""Steps and pipelines: the ``@step`` and ``@pipeline`` decorators, and the graph tracer.

A ``Step`` wraps a typed function and its options (retries, timeout, resources, caching). Called
outside a pipeline it simply runs the function, which is handy in tests. A ``Pipeline`` wraps a
function whose body calls steps; ``Pipeline.graph(**params)`` runs that body in a *tracing*
context, where calling a step records a ``StepCall`` node instead of running it and returns an
``Output`` placeholder (a tuple of them for a step annotated ``-> tuple[A, B]``). Placeholders
only say *which* output flows where; their values exist at run time, so reading an attribute,
indexing, iterating or testing one is an error.

Everything is checked before anything runs: options when a step is decorated; arguments,
JSON-ability of literals and pipeline parameters, and annotation mismatches when a step is
called in the trace (see ``mloop.pipelines.graph``). Tracing cannot produce a cycle: a step can
only receive placeholders returned by calls made before it.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import math
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, NoReturn, ParamSpec, TypeVar, cast, overload

from mloop.errors import InvalidInput
from mloop.pipelines.graph import Graph, Ref, StepCall, check_call, json_problem

if typing.TYPE_CHECKING:
    from mloop.pipelines.executors import Executor
    from mloop.pipelines.runner import PipelineResult
    from mloop.tracking.client import TrackingClient

__all__ = ["Output", "Pipeline", "Step", "StepOptions", "pipeline", "step"]

P = ParamSpec("P")
R = TypeVar("R")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


# --- options ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepOptions:
    """How a step runs and caches; checked when the step is decorated."""

    retries: int = 0
    retry_backoff: float = 1.0
    timeout: float | None = None
    resources: dict[str, float] = field(default_factory=dict)
    cache: bool = True
    cache_version: str | None = None
    ignore_inputs: tuple[str, ...] = ()
    expire: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, every option present (part of what a cache key and the CLI show)."""
        return {
            "retries": self.retries,
            "retry_backoff": self.retry_backoff,
            "timeout": self.timeout,
            "resources": dict(sorted(self.resources.items())),
            "cache": self.cache,
            "cache_version": self.cache_version,
            "ignore_inputs": list(self.ignore_inputs),
            "expire": self.expire,
        }

    def non_defaults(self) -> dict[str, Any]:
        """Only the options that differ from the defaults."""
        default = StepOptions().to_dict()
        return {k: v for k, v in self.to_dict().items() if v != default[k]}


def _bad(step_name: str, option: str, value: Any, want: str) -> NoReturn:
    raise InvalidInput(
        f"step {step_name!r}: option {option}={value!r} is not valid; {want}",
        step=step_name,
        option=option,
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(step_name: str, option: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if not _number(value) or value <= 0:
        _bad(step_name, option, value, "give a positive number of seconds, a timedelta or None")
    return float(value)


def _make_options(
    step_name: str,
    params: Mapping[str, inspect.Parameter],
    *,
    retries: Any,
    retry_backoff: Any,
    timeout: Any,
    resources: Any,
    cache: Any,
    cache_version: Any,
    ignore_inputs: Any,
    expire: Any,
) -> StepOptions:
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        _bad(step_name, "retries", retries, "give a whole number >= 0")
    if not _number(retry_backoff) or retry_backoff < 0:
        _bad(step_name, "retry_backoff", retry_backoff, "give a number of seconds >= 0")
    checked_resources: dict[str, float] = {}
    if resources is not None:
        if not isinstance(resources, Mapping):
            _bad(step_name, "resources", resources, 'give a dict such as {"num_cpus": 2}')
        for key, amount in resources.items():
            if not isinstance(key, str) or not key:
                _bad(step_name, "resources", resources, "resource names must be strings")
            if not _number(amount) or amount < 0:
                _bad(step_name, "resources", resources, f"{key!r} needs a number >= 0")
            checked_resources[key] = amount
    if not isinstance(cache, bool):
        _bad(step_name, "cache", cache, "give True or False")
    if cache_version is not None:
        if isinstance(cache_version, bool) or not isinstance(cache_version, (str, int)):
            _bad(step_name, "cache_version", cache_version, "give a string, an int or None")
        cache_version = str(cache_version)
    names = (ignore_inputs,) if isinstance(ignore_inputs, str) else ignore_inputs
    try:
        names = tuple(names)
    except TypeError:
        _bad(step_name, "ignore_inputs", ignore_inputs, "give a list of parameter names")
    for name in names:
        if name not in params:
            _bad(
                step_name,
                "ignore_inputs",
                ignore_inputs,
                f"{name!r} is not a parameter; parameters: {', '.join(params) or 'none'}",
            )
    return StepOptions(
        retries=retries,
        retry_backoff=float(retry_backoff),
        timeout=_seconds(step_name, "timeout", timeout),
        resources=checked_resources,
        cache=cache,
        cache_version=cache_version,
        ignore_inputs=names,
        expire=_seconds(step_name, "expire", expire),
    )


# --- tracing ----------------------------------------------------------------------------------


class _Trace:
    """The state of one ``Pipeline.graph`` call: the nodes recorded so far."""

    def __init__(self, pipeline_name: str) -> None:
        self.pipeline_name = pipeline_name
        self.nodes: dict[str, StepCall] = {}
        self.open = True

    def new_id(self, base: str) -> str:
        if base not in self.nodes:
            return base
        n = 2
        while f"{base}_{n}" in self.nodes:
            n += 1
        return f"{base}_{n}"


_TRACE: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar("mloop_trace", default=None)


class Output:
    """A placeholder for a step's output while a pipeline is traced; its value exists at run time.

    Pass it to another step. Anything that needs the value itself (an attribute, an index,
    iteration, ``if``, arithmetic) raises ``InvalidInput``: do that work inside a step.
    """

    __slots__ = ("_annotation", "_ref", "_trace")

    def __init__(self, trace: _Trace, ref: Ref, annotation: Any) -> None:
        object.__setattr__(self, "_trace", trace)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_annotation", annotation)

    @property
    def ref(self) -> Ref:
        """Which node (and which element of a tuple output) this stands for."""
        return cast(Ref, object.__getattribute__(self, "_ref"))

    def __repr__(self) -> str:
        return f"<Output of {self.ref}>"

    def _refuse(self, what: str) -> InvalidInput:
        return InvalidInput(
            f"cannot {what} the output of step {str(self.ref)!r} while the pipeline is being "
            "built: step outputs are placeholders whose values only exist at run time; "
            "do this inside a step that takes the output as an argument",
            step=self.ref.node,
        )

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._refuse(f"read attribute {name!r} of")

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise self._refuse(f"set attribute {name!r} on")

    def __getitem__(self, key: Any) -> NoReturn:
        raise self._refuse(f"index [{key!r}]")

    def __iter__(self) -> Iterator[Any]:
        raise InvalidInput(
            f"cannot unpack or iterate the output of step {str(self.ref)!r}: it returns one "
            "value; annotate the step's return as tuple[A, B] to get several outputs",
            step=self.ref.node,
        )

    def __len__(self) -> int:
        raise self._refuse("take len() of")

    def __bool__(self) -> bool:
        raise self._refuse("test the truth of (if/and/or on)")

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise self._refuse("call")

    def _arith(self, *args: Any) -> NoReturn:
        raise self._refuse("compute with")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arith
    __truediv__ = __rtruediv__ = __lt__ = __le__ = __gt__ = __ge__ = _arith
    __hash__ = object.__hash__


# --- steps ------------------------------------------------------------------------------------


class Step(Generic[P, R]):
    """A typed function with options; runs directly, or records a node inside a pipeline."""

    def __init__(self, func: Callable[P, R], name: str, options: StepOptions) -> None:
        self.func = func
        self.name = name
        self.options = options
        self.signature = inspect.signature(func)
        functools.update_wrapper(self, func)
        self.__signature__ = self.signature

    def __repr__(self) -> str:
        return f"<Step {self.name!r} ({self.func.__module__}.{self.func.__qualname__})>"

    def __reduce__(self) -> tuple[Callable[[str, str], Step[..., Any]], tuple[str, str]]:
        # By reference, as pickle does for functions: the module attribute is this Step, so
        # pickling the bare function would fail; a worker re-imports the module instead.
        # Checked here, so that a step that cannot be found fails on the sending side.
        where = (self.func.__module__, self.func.__qualname__)
        if _import_step(*where) is not self:
            raise InvalidInput(
                f"step {self.name!r} cannot be sent to another process: "
                f"{where[0]}:{where[1]} names a different object; "
                "define each step once, at module level",
                step=self.name,
            )
        return _import_step, where

    @functools.cached_property
    def type_hints(self) -> dict[str, Any]:
        """Resolved annotations (``typing.get_type_hints``); empty if they cannot be resolved."""
        try:
            return typing.get_type_hints(self.func)
        except Exception:  # forward references that do not resolve: check nothing, run anyway
            return {}

    @property
    def output_count(self) -> int | None:
        """How many outputs a ``-> tuple[A, B]`` step has; None for one output."""
        args = self._tuple_args()
        return None if args is None else len(args)

    def output_type(self, index: int | None) -> Any:
        """The annotated type of the output (element ``index`` of a tuple), None if unknown."""
        if index is None:
            return self.type_hints.get("return")
        args = self._tuple_args()
        return None if args is None else args[index]

    def _tuple_args(self) -> tuple[Any, ...] | None:
        ret = self.type_hints.get("return")
        if typing.get_origin(ret) is not tuple:
            return None
        args = typing.get_args(ret)
        if not args or (len(args) == 2 and args[1] is Ellipsis) or args == ((),):
            return None
        return args

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        trace = _TRACE.get()
        if trace is None:
            return self.func(*args, **kwargs)
        return cast(R, self._record(trace, args, kwargs))

    def call_with(self, arguments: Mapping[str, Any]) -> R:
        """Run the function with arguments by name (positional-only ones included)."""
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        for name, param in self.signature.parameters.items():
            if name not in arguments:
                continue
            if param.kind is param.POSITIONAL_ONLY:
                positional.append(arguments[name])
            else:
                keywords[name] = arguments[name]
        return self.func(*positional, **keywords)

    def _record(
        self, trace: _Trace, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Output | tuple[Output, ...]:
        node_id = trace.new_id(self.name)
        params = list(self.signature.parameters.values())
        if len(args) > len(params):
            raise InvalidInput(
                f"step {node_id!r}: takes {len(params)} arguments but {len(args)} were given",
                step=node_id,
            )
        bound: dict[str, Any] = {}
        for param, value in zip(params, args, strict=False):
            bound[param.name] = value
        for name, value in kwargs.items():
            if name in bound:
                raise InvalidInput(
                    f"step {node_id!r}: argument {name!r} given twice (by position and by name)",
                    step=node_id,
                    argument=name,
                )
            param_obj = self.signature.parameters.get(name)
            if param_obj is not None and param_obj.kind is param_obj.POSITIONAL_ONLY:
                raise InvalidInput(
                    f"step {node_id!r}: argument {name!r} is positional-only",
                    step=node_id,
                    argument=name,
                )
            bound[name] = value
        call = StepCall(
            id=node_id,
            step=self,
            args={k: _to_graph_value(trace, node_id, k, v) for k, v in bound.items()},
        )
        check_call(call, trace.nodes)
        trace.nodes[node_id] = call
        count = self.output_count
        if count is None:
            return Output(trace, Ref(node_id), self.output_type(None))
        return tuple(Output(trace, Ref(node_id, i), self.output_type(i)) for i in range(count))


def _to_graph_value(trace: _Trace, node_id: str, arg: str, value: Any) -> Any:
    """Turn placeholders into ``Ref``s; allow them one level deep in a list or a dict."""
    if isinstance(value, Output):
        return _own_ref(trace, node_id, arg, value)
    if _has_nested_output(value):
        raise InvalidInput(
            f"step {node_id!r}, argument {arg!r}: a step output is nested more than one level "
            "deep; outputs can be passed directly or as items of a list or dict — "
            "flatten the structure, or combine the outputs in a step first",
            step=node_id,
            argument=arg,
        )
    if isinstance(value, list):
        return [_own_ref(trace, node_id, arg, v) if isinstance(v, Output) else v for v in value]
    if isinstance(value, dict):
        return {
            k: _own_ref(trace, node_id, arg, v) if isinstance(v, Output) else v
            for k, v in value.items()
        }
    if isinstance(value, tuple) and any(isinstance(v, Output) for v in value):
        raise InvalidInput(
            f"step {node_id!r}, argument {arg!r}: step outputs can be passed in a list or a "
            "dict, not a tuple; pass a list",
            step=node_id,
            argument=arg,
        )
    return value


def _import_step(module: str, qualname: str) -> Step[..., Any]:
    """Find a step by module and qualified name (how a ``Step`` is unpickled)."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not isinstance(found, Step):
        raise InvalidInput(
            f"step {module}:{qualname} cannot be found by import; define steps at module level "
            "so that other processes can load them"
        )
    return found


def _has_nested_output(value: Any, depth: int = 0) -> bool:
    """Whether an ``Output`` sits two or more containers deep in ``value``."""
    if isinstance(value, Output):
        return depth > 1
    if depth > 64:
        return False
    if isinstance(value, (list, tuple)):
        return any(_has_nested_output(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_has_nested_output(v, depth + 1) for v in value.values())
    return False


def _own_ref(trace: _Trace, node_id: str, arg: str, output: Output) -> Ref:
    origin = cast(_Trace, object.__getattribute__(output, "_trace"))
    if origin is not trace:
        state = "another pipeline's graph" if origin.open else "a graph that is already built"
        raise InvalidInput(
            f"step {node_id!r}, argument {arg!r}: the output of {str(output.ref)!r} comes from "
            f"{state} (pipeline {origin.pipeline_name!r}); outputs can only be passed between "
            "steps of the same pipeline call",
            step=node_id,
            argument=arg,
        )
    return output.ref


def _step_name(func: Any, name: Any, what: str) -> str:
    if not inspect.isfunction(func):
        raise InvalidInput(
            f"@{what} needs a function defined with def or lambda, not {type(func).__name__}"
        )
    chosen = func.__name__ if name is None else name
    if not isinstance(chosen, str) or not _NAME.match(chosen):
        raise InvalidInput(
            f"@{what}: name {chosen!r} is not valid; use letters, digits, '_', '.', '-'"
            + (" (a lambda needs name=...)" if chosen == "<lambda>" else ""),
            option="name",
        )
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InvalidInput(
                f"{what} {chosen!r}: *{param.name} parameters are not supported; "
                "name every parameter so the graph can record and check it",
                option=param.name,
            )
    return chosen


@overload
def step(func: Callable[P, R], /) -> Step[P, R]: ...
@overload
def step(
    *,
    retries: int = 0,
    retry_backoff: float = 1.0,
    timeout: float | timedelta | None = None,
    resources: Mapping[str, float] | None = None,
    cache: bool = True,
    cache_version: str | int | None = None,
    ignore_inputs: str | tuple[str, ...] | list[str] = (),
    expire: float | timedelta | None = None,
    name: str | None = None,
) -> Callable[[Callable[P, R]], Step[P, R]]: ...
def step(
    func: Callable[P, R] | None = None,
    /,
    *,
    retries: int = 0,
    retry_backoff: float = 1.0,
    timeout: float | timedelta | None = None,
    resources: Mapping[str, float] | None = None,
    cache: bool = True,
    cache_version: str | int | None = None,
    ignore_inputs: str | tuple[str, ...] | list[str] = (),
    expire: float | timedelta | None = None,
    name: str | None = None,
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Make a typed function a pipeline step: ``@step`` or ``@step(retries=2, ...)``.

    ``timeout`` and ``expire`` are seconds (or a ``timedelta``); ``ignore_inputs`` names
    parameters left out of the cache key; ``resources`` is e.g. ``{"num_cpus": 2}``.
    """

    def wrap(f: Callable[P, R]) -> Step[P, R]:
        if isinstance(f, Step):
            raise InvalidInput(f"{f.name!r} is already a step; apply @step once")
        step_name = _step_name(f, name, "step")
        options = _make_options(
            step_name,
            inspect.signature(f).parameters,
            retries=retries,
            retry_backoff=retry_backoff,
            timeout=timeout,
            resources=resources,
            cache=cache,
            cache_version=cache_version,
            ignore_inputs=ignore_inputs,
            expire=expire,
        )
        return Step(f, step_name, options)

    return wrap if func is None else wrap(func)


# --- pipelines --------------------------------------------------------------------------------


class Pipeline:
    """A function whose body calls steps; ``graph(**params)`` traces it into a checked DAG."""

    def __init__(self, func: Callable[..., Any], name: str) -> None:
        self.func = func
        self.name = name
        self.signature = inspect.signature(func)
        functools.update_wrapper(cast(Any, self), func)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}>"

    @property
    def defaults(self) -> dict[str, Any]:
        """Parameters that have a default, with it."""
        return {
            p.name: p.default
            for p in self.signature.parameters.values()
            if p.default is not inspect.Parameter.empty
        }

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults overridden by ``params``, checked: known names, all given, JSON-able."""
        known = self.signature.parameters
        for key in params:
            if key not in known:
                raise InvalidInput(
                    f"pipeline {self.name!r}: unknown parameter {key!r}; "
                    f"parameters: {', '.join(known) or 'none'}",
                    parameter=key,
                )
        resolved = {**self.defaults, **params}
        resolved = {k: resolved[k] for k in known if k in resolved}  # signature order
        missing = [k for k in known if k not in resolved]
        if missing:
            raise InvalidInput(
                f"pipeline {self.name!r}: parameter {missing[0]!r} has no default; give it, "
                f"e.g. graph({missing[0]}=...) or --param {missing[0]}=...",
                parameter=missing[0],
            )
        for key, value in resolved.items():
            problem = json_problem(value)
            if problem:
                raise InvalidInput(
                    f"pipeline {self.name!r}, parameter {key!r}: {problem}. Pipeline parameters "
                    "must be JSON (None, bool, int, finite float, str, lists and string-keyed "
                    "dicts of those); produce anything else in a step",
                    parameter=key,
                )
        return resolved

    def graph(self, **params: Any) -> Graph:
        """Trace the pipeline with ``params`` (over its defaults) into a checked ``Graph``."""
        resolved = self.resolve_params(params)
        trace = _Trace(self.name)
        token = _TRACE.set(trace)
        try:
            positional_only = [
                p.name for p in self.signature.parameters.values() if p.kind is p.POSITIONAL_ONLY
            ]
            self.func(
                *(resolved[k] for k in positional_only),
                **{k: v for k, v in resolved.items() if k not in positional_only},
            )
        finally:
            _TRACE.reset(token)
            trace.open = False
        if not trace.nodes:
            raise InvalidInput(
                f"pipeline {self.name!r} calls no step; call at least one @step function "
                "in its body (plain functions run while the graph is built, not as steps)"
            )
        return Graph(trace.nodes.values(), name=self.name, params=resolved)

    def run(
        self,
        executor: str | Executor = "local",
        *,
        client: TrackingClient | None = None,
        max_workers: int | None = None,
        **params: Any,
    ) -> PipelineResult:
        """Run the pipeline with ``params`` as a tracked run (see ``mloop.pipelines.runner``);
        raises ``StepFailed`` naming the step if one fails."""
        from mloop.pipelines.runner import run_pipeline

        return run_pipeline(self, params, executor=executor, client=client, max_workers=max_workers)

    def resume(
        self,
        run_id: str,
        *,
        executor: str | Executor = "local",
        client: TrackingClient | None = None,
        max_workers: int | None = None,
    ) -> PipelineResult:
        """Re-run a failed run of this pipeline with its params, reusing the steps that
        finished in it."""
        from mloop.pipelines.runner import run_pipeline

        return run_pipeline(
            self, None, executor=executor, client=client, max_workers=max_workers,
            resume_from=run_id,
        )  # fmt: skip


@overload
def pipeline(func: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...
def pipeline(
    func: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function that calls steps a pipeline: ``@pipeline`` or ``@pipeline(name=...)``."""

    def wrap(f: Callable[..., Any]) -> Pipeline:
        if isinstance(f, (Pipeline, Step)):
            raise InvalidInput(f"{f.name!r} is already a {type(f).__name__.lower()}")
        return Pipeline(f, _step_name(f, name, "pipeline"))

    return wrap if func is None else wrap(func)
