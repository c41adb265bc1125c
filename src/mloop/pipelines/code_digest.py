"""The code part of a step's cache key: a digest of a function and the project code it reaches.

``code_digest(step)`` hashes the step's own normalised source and, following references, every
*project* function, class and module-level constant it uses, so that a change in a helper two
calls away re-runs the step (the bug ZenML and KFP users reported). What goes in:

- **Source, normalised.** ``inspect.getsource`` parsed with ``ast`` and dumped without line
  numbers or column offsets, so reformatting and comments do not count. Docstrings are removed
  too: they do not change what a step computes. The decorators of the step itself are left out
  (they carry its options, ``retries=`` and the like, which the cache key records apart); the
  decorators of helpers and classes stay in, since they may change behaviour.
- **References, recursively.** Global names and attribute chains on imported project modules
  (``helpers.clean(df)``, ``from mypkg.features import make``), followed through helpers, class
  bodies (methods included), closures and default arguments, each object visited once (cycles
  end). *Project* code is code whose file lies outside the standard library and site-packages
  (the sysconfig paths ``stdlib``, ``platstdlib``, ``purelib``, ``platlib`` and the site folders),
  or that has no file at all (a REPL, ``exec``), and is not ``mloop`` itself.
- **Libraries by version.** A third-party reference contributes ``dist:<distribution>`` →
  version (``importlib.metadata``); a standard-library one contributes ``dist:python`` → the
  interpreter's name and minor version. Builtins contribute nothing.
- **Values.** Module-level constants and closure variables holding ``None``, bools, numbers,
  strings, bytes, enum members, and tuples, lists, sets or dicts of those are hashed by a
  canonical repr (sets and dicts sorted). Any other value is not hashed: its type counts and a
  ``note:`` entry in ``parts`` says so.
- **No source** (a function built in a REPL or by ``exec``): its bytecode is hashed instead
  (``co_code`` and ``co_consts`` recursively, plus names and signature), with a ``note:`` entry.
  Bytecode changes between Python versions, so such a digest is stable only on one interpreter.
  A function with no Python code at all (written in C) is refused with ``InvalidInput``.

The digest is deterministic across processes: nothing depends on ``id()``, ``hash()`` or the
order of dictionaries; every collection is sorted before it is hashed.
"""

from __future__ import annotations

import ast
import contextlib
import enum
import functools
import hashlib
import importlib.metadata
import inspect
import json
import linecache
import os
import platform
import site
import sys
import sysconfig
import textwrap
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mloop.errors import InvalidInput

__all__ = ["CodeDigest", "code_digest"]

_FORMAT = "mloop-code-digest/1"
_MAX_VALUE_DEPTH = 16
_NOTE = "note:"
_DIST = "dist:"


@dataclass(frozen=True)
class CodeDigest:
    """The digest of a step's code, and the digest of each piece that went into it.

    ``parts`` maps a qualified name (``pkg.helpers.clean``, ``pkg.config.THRESHOLD``) to the
    SHA-256 of that piece alone; ``dist:<name>`` keys map to a library's version, and ``note:``
    keys say where the digest is weaker than usual (bytecode, unhashed values).
    """

    digest: str
    parts: dict[str, str] = field(hash=False)

    def diff(self, other: CodeDigest) -> list[str]:
        """Name what changed from this digest to ``other``: lines ``added: k``, ``changed: k``."""
        changes: list[str] = []
        for key in sorted(self.parts.keys() | other.parts.keys()):
            before, after = self.parts.get(key), other.parts.get(key)
            if before == after:
                continue
            if before is None:
                changes.append(f"added: {key}")
            elif after is None:
                changes.append(f"removed: {key}")
            elif key.startswith(_DIST):
                changes.append(f"changed: {key} ({before} -> {after})")
            else:
                changes.append(f"changed: {key}")
        return changes


def code_digest(func: Callable[..., Any]) -> CodeDigest:
    """Digest ``func``'s normalised source and the project functions, classes, constants it uses."""
    if isinstance(func, types.MethodType):
        func = func.__func__
    if not isinstance(func, types.FunctionType):
        what = type(func).__name__
        raise InvalidInput(
            f"cannot digest {func!r}: a {what} has no Python source or bytecode; "
            "pass a function defined with def or lambda"
        )
    walker = _Walker()
    root = walker.visit_function(func, root=True)
    payload = {"format": _FORMAT, "root": root, "parts": sorted(walker.parts.items())}
    return CodeDigest(digest=_sha256(_canonical_json(payload)), parts=dict(walker.parts))


# --- the walk ---------------------------------------------------------------------------------


class _Walker:
    """Visits a function and everything it reaches, filling ``parts``; each object once."""

    def __init__(self) -> None:
        self.parts: dict[str, str] = {}
        # id() only guards against visiting an object twice within this call; the objects are
        # kept alive in _held so an id cannot be reused, and ids never reach the digest.
        self._visited: dict[int, str] = {}
        self._held: list[object] = []

    # -- parts

    def _claim_key(self, obj: object, wanted: str) -> str | None:
        """The part key for ``obj``, or None when it was visited already."""
        if id(obj) in self._visited:
            return None
        key, n = wanted, 1
        while key in self.parts:  # two lambdas with one qualname: number them in visit order
            n += 1
            key = f"{wanted}#{n}"
        self.parts[key] = ""  # reserved until the digest is known (cycles see it as taken)
        self._visited[id(obj)] = key
        self._held.append(obj)
        return key

    def _note(self, key: str, message: str) -> None:
        note_key = _NOTE + key
        previous = self.parts.get(note_key)
        self.parts[note_key] = message if previous is None else f"{previous}; {message}"

    def _add_library(self, module_name: str | None) -> None:
        if not module_name:
            return
        top = module_name.partition(".")[0]
        if top in ("builtins", "__main__"):
            return
        if top in sys.stdlib_module_names or top in sys.builtin_module_names:
            version = sys.version_info
            self.parts[_DIST + "python"] = (
                f"{platform.python_implementation()} {version.major}.{version.minor}"
            )
            return
        dists = _distributions_of(top)
        if not dists:
            self.parts[_DIST + top] = "unknown version"
        for dist in dists:
            self.parts[_DIST + dist] = _version_of(dist)

    # -- objects

    def visit_ref(self, obj: object, const_key: str, *, in_project: bool) -> None:
        """Follow a value reached by name: code is visited, libraries counted, values hashed."""
        if isinstance(obj, types.ModuleType):
            if not _is_project_module(obj):
                self._add_library(obj.__name__)
            return
        if isinstance(obj, types.MethodType):
            self.visit_ref(obj.__func__, const_key, in_project=in_project)
            return
        if isinstance(obj, types.FunctionType):
            if _is_project_function(obj):
                self.visit_function(obj)
            else:
                self._add_library(obj.__module__)
            return
        if isinstance(obj, type):
            if _is_project_class(obj):
                self.visit_class(obj)
            else:
                self._add_library(obj.__module__)
            return
        if isinstance(obj, functools.partial):
            self.visit_ref(obj.func, const_key, in_project=in_project)
            if in_project:
                self.visit_value(const_key, (obj.args, obj.keywords))
            return
        wrapped = _wrapped_of(obj)
        if wrapped is not None:  # functools.lru_cache and friends
            self._add_library(type(obj).__module__)
            self.visit_ref(wrapped, const_key, in_project=in_project)
            return
        if isinstance(obj, types.BuiltinFunctionType | types.BuiltinMethodType):
            self._add_library(getattr(obj, "__module__", None))
            return
        if in_project:
            self.visit_value(const_key, obj)
        else:
            self._add_library(type(obj).__module__)

    def visit_value(self, key: str, value: object) -> None:
        """A module-level constant: hashed when simple, else its type and a note."""
        if key in self.parts:
            return
        text, exact = _canonical_value(value)
        self.parts[key] = _sha256(text)
        if not exact:
            self._note(key, f"value of type {_type_name(value)} is not hashed, only its type")
            self._follow_type(value)

    def _follow_type(self, value: object) -> None:
        cls = type(value)
        if _is_project_class(cls):
            self.visit_class(cls)
        else:
            self._add_library(cls.__module__)

    def visit_function(self, func: types.FunctionType, *, root: bool = False) -> str:
        """Hash one function (source, or bytecode without it) and follow what it references."""
        # The code object's names, not the function's: functools.wraps copies the wrapped
        # function's __qualname__ and __module__ onto a wrapper.
        module_name = str(func.__globals__.get("__name__", func.__module__))
        wanted = f"{module_name}.{func.__code__.co_qualname}"
        key = self._claim_key(func, wanted)
        if key is None:
            return self._visited[id(func)]
        node = _function_node(func, strip_decorators=root)
        closure = self._closure(func, key)
        defaults = [
            _canonical_value(func.__defaults__)[0],
            _canonical_value(dict(sorted((func.__kwdefaults__ or {}).items())))[0],
        ]
        globals_ = func.__globals__
        if node is not None:
            body = ast.dump(node, include_attributes=False)
            code_names = _code_names(func.__code__)
            chains = [c for c in _reference_chains(node) if c[0] in code_names]
        else:
            body = _canonical_json(_code_payload(func.__code__))
            chains = _bytecode_chains(func.__code__, globals_)
            self._note(
                key, "no source available; hashed from bytecode (tied to the Python version)"
            )
        payload = {"kind": "function", "body": body, "defaults": defaults, "closure": closure}
        self.parts[key] = _sha256(_canonical_json(payload))
        self._follow_chains(chains, globals_, module_name)
        for value in (*(func.__defaults__ or ()), *(func.__kwdefaults__ or {}).values()):
            if _is_code_like(value):
                self.visit_ref(value, f"{key}.<default>", in_project=False)
        return key

    def _closure(self, func: types.FunctionType, key: str) -> list[list[str]]:
        entries: list[list[str]] = []
        cells = func.__closure__ or ()
        for name, cell in zip(func.__code__.co_freevars, cells, strict=True):
            try:
                value = cell.cell_contents
            except ValueError:  # a cell not filled yet (a name assigned after the def)
                entries.append([name, "<empty>"])
                continue
            if _is_code_like(value):
                entries.append([name, f"ref {_ref_name(value)}"])
                self.visit_ref(value, f"{key}.<closure {name}>", in_project=True)
                continue
            text, exact = _canonical_value(value)
            entries.append([name, text])
            if not exact:
                self._note(
                    key,
                    f"closure variable '{name}' holds a {_type_name(value)}; only its type counts",
                )
                self._follow_type(value)
        return entries

    def visit_class(self, cls: type) -> str:
        """Hash a class's source (methods included) and follow what its body references."""
        key = self._claim_key(cls, f"{cls.__module__}.{cls.__qualname__}")
        if key is None:
            return self._visited[id(cls)]
        module = sys.modules.get(cls.__module__)
        globals_: Mapping[str, Any] = vars(module) if module is not None else {}
        node = _class_node(cls)
        if node is not None:
            body = ast.dump(node, include_attributes=False)
            chains = [c for c in _reference_chains(node) if c[0] in globals_]
            self.parts[key] = _sha256(_canonical_json({"kind": "class", "body": body}))
            self._follow_chains(chains, globals_, cls.__module__)
        else:
            self._note(key, "no source available; methods hashed from bytecode")
            members: list[list[str]] = []
            codes: list[types.CodeType] = []
            for name, member in sorted(vars(cls).items()):
                if name in ("__dict__", "__weakref__", "__module__", "__doc__", "__qualname__"):
                    continue
                target = getattr(member, "__func__", member)
                if isinstance(target, types.FunctionType):
                    codes.append(target.__code__)
                    members.append([name, _canonical_json(_code_payload(target.__code__))])
                else:
                    members.append([name, _canonical_value(member)[0]])
            bases = [f"{b.__module__}.{b.__qualname__}" for b in cls.__bases__]
            payload = {"kind": "class", "bases": bases, "members": members}
            self.parts[key] = _sha256(_canonical_json(payload))
            for code in codes:
                self._follow_chains(_bytecode_chains(code, globals_), globals_, cls.__module__)
        for base in cls.__bases__:
            self.visit_ref(base, f"{key}.<base>", in_project=False)
        return key

    def _follow_chains(
        self, chains: Iterable[tuple[str, ...]], globals_: Mapping[str, Any], module_name: str
    ) -> None:
        for chain in chains:
            name, rest = chain[0], chain[1:]
            if name not in globals_:
                continue  # a builtin, or a local the filter could not rule out
            obj, key = globals_[name], f"{module_name}.{name}"
            while rest and isinstance(obj, types.ModuleType) and _is_project_module(obj):
                found = _module_attribute(obj, rest[0])
                if found is _MISSING:
                    break
                key, obj, rest = f"{obj.__name__}.{rest[0]}", found, rest[1:]
            self.visit_ref(obj, key, in_project=True)


_MISSING = object()


def _module_attribute(module: types.ModuleType, name: str) -> object:
    try:
        return getattr(module, name)
    except AttributeError:
        return _MISSING


def _wrapped_of(obj: object) -> object | None:
    try:
        wrapped: object = inspect.getattr_static(obj, "__wrapped__")
    except AttributeError:
        return None
    if isinstance(wrapped, property | types.MemberDescriptorType | types.GetSetDescriptorType):
        found: object | None = getattr(obj, "__wrapped__", None)
        return found
    return wrapped


def _ref_name(value: object) -> str:
    """A stable name for code held in a closure (the digest of the code itself is its own part)."""
    if isinstance(value, types.ModuleType):
        return value.__name__
    if isinstance(value, functools.partial):
        return f"partial of {_ref_name(value.func)}"
    target = getattr(value, "__func__", value)
    if isinstance(target, types.FunctionType):
        module_name = target.__globals__.get("__name__", target.__module__)
        return f"{module_name}.{target.__code__.co_qualname}"
    module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return _type_name(value)


def _is_code_like(value: object) -> bool:
    return isinstance(
        value,
        types.FunctionType | types.MethodType | type | types.ModuleType | functools.partial,
    ) or (callable(value) and _wrapped_of(value) is not None)


# --- sources and references --------------------------------------------------------------------


class _Normaliser(ast.NodeTransformer):
    """Removes docstrings from every function, class and module body in a tree."""

    def _strip(self, node: ast.AST) -> ast.AST:
        self.generic_visit(node)
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        return node

    visit_FunctionDef = _strip
    visit_AsyncFunctionDef = _strip
    visit_ClassDef = _strip
    visit_Module = _strip


def _normalise(node: ast.AST) -> ast.AST:
    return _Normaliser().visit(node)  # type: ignore[no-any-return]


def _function_node(func: types.FunctionType, *, strip_decorators: bool) -> ast.AST | None:
    """The normalised AST of ``func``, or None when its source cannot be found or trusted."""
    if func.__code__.co_name == "<lambda>":
        return _lambda_node(func)
    code = func.__code__
    try:  # from the code object: inspect would follow a wrapper's __wrapped__ to another function
        source = textwrap.dedent(inspect.getsource(code))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if len(defs) != 1 or defs[0].name != code.co_name:
        return None  # the file no longer matches the code that was loaded
    node = defs[0]
    if strip_decorators:
        node.decorator_list = []
    return _normalise(node)


def _lambda_node(func: types.FunctionType) -> ast.AST | None:
    code = func.__code__
    linecache.checkcache(code.co_filename)
    lines = linecache.getlines(code.co_filename, func.__globals__)
    if not lines:
        return None
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return None
    n_args = code.co_argcount + code.co_kwonlyargcount
    n_args += bool(code.co_flags & inspect.CO_VARARGS) + bool(
        code.co_flags & inspect.CO_VARKEYWORDS
    )
    arg_names = list(code.co_varnames[:n_args])
    found = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Lambda)
        and n.lineno == code.co_firstlineno
        and _lambda_arg_names(n) == arg_names
    ]
    if len(found) != 1:
        return None  # several lambdas alike on one line: the bytecode tells them apart
    return _normalise(found[0])


def _lambda_arg_names(node: ast.Lambda) -> list[str]:
    a = node.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return names


def _class_node(cls: type) -> ast.AST | None:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return None
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    if len(classes) != 1 or classes[0].name != cls.__name__:
        return None
    return _normalise(classes[0])


class _ChainCollector(ast.NodeVisitor):
    """Names and dotted chains (``helpers.clean``) loaded in a tree, in source order."""

    def __init__(self) -> None:
        self.chains: dict[tuple[str, ...], None] = {}

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attrs: list[str] = []
        value: ast.expr = node
        while isinstance(value, ast.Attribute):
            attrs.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name):
            self.chains[(value.id, *reversed(attrs))] = None
        else:
            self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.chains[(node.id,)] = None


def _reference_chains(node: ast.AST) -> list[tuple[str, ...]]:
    collector = _ChainCollector()
    collector.visit(node)
    return list(collector.chains)


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _code_names(code: types.CodeType) -> set[str]:
    """Names the compiler resolves globally or as attributes: local variables are not among them."""
    return {name for c in _code_objects(code) for name in c.co_names}


def _bytecode_chains(code: types.CodeType, globals_: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """References without source: each global name, and each name as an attribute of a module."""
    names = list(dict.fromkeys(n for c in _code_objects(code) for n in c.co_names))
    chains: list[tuple[str, ...]] = []
    for name in names:
        if isinstance(globals_.get(name), types.ModuleType):
            chains.extend((name, attr) for attr in names if attr != name)
        else:
            chains.append((name,))
    return chains


def _code_payload(code: types.CodeType) -> list[Any]:
    consts = [
        _code_payload(c) if isinstance(c, types.CodeType) else _canonical_value(c)[0]
        for c in code.co_consts
    ]
    return [
        code.co_name,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
        code.co_code.hex(),
        consts,
        list(code.co_names),
        list(code.co_varnames),
        list(code.co_freevars),
        list(code.co_cellvars),
    ]


# --- values ------------------------------------------------------------------------------------

_EXACT_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def _canonical_value(value: object, depth: int = 0) -> tuple[str, bool]:
    """A repr that does not depend on the process, and whether it captures the whole value."""
    if type(value) in _EXACT_SCALARS:
        return repr(value), True
    if isinstance(value, enum.Enum):
        return f"{_type_name(value)}.{value.name}", True
    if depth >= _MAX_VALUE_DEPTH:
        return f"<{_type_name(value)}: too deep>", False
    if isinstance(value, tuple | list) and type(value) in (tuple, list):
        items = [_canonical_value(v, depth + 1) for v in value]
        text = ", ".join(t for t, _ in items)
        return f"{type(value).__name__}({text})", all(e for _, e in items)
    if isinstance(value, set | frozenset) and type(value) in (set, frozenset):
        items = sorted(_canonical_value(v, depth + 1) for v in value)
        text = ", ".join(t for t, _ in items)
        return f"{type(value).__name__}({text})", all(e for _, e in items)
    if isinstance(value, dict) and type(value) is dict:
        pairs = sorted(
            (_canonical_value(k, depth + 1), _canonical_value(v, depth + 1))
            for k, v in value.items()
        )
        text = ", ".join(f"{k[0]}: {v[0]}" for k, v in pairs)
        return f"dict({text})", all(k[1] and v[1] for k, v in pairs)
    return f"<{_type_name(value)}>", False


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _canonical_json(payload: object) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- what counts as project code ---------------------------------------------------------------


@functools.cache
def _library_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    schemes = [sysconfig.get_paths()]
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    schemes.append(sysconfig.get_paths(vars=base))
    for paths in schemes:
        roots.update(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths)
    with contextlib.suppress(AttributeError):  # some virtualenvs ship a site.py without it
        roots.update(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        roots.add(site.getusersitepackages())
    return tuple(sorted({os.path.realpath(r) for r in roots if r}))


@functools.cache
def _is_library_path(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root + os.sep) for root in _library_roots())


def _is_project_module(module: types.ModuleType) -> bool:
    name = module.__name__
    top = name.partition(".")[0]
    if top == "mloop" or name in sys.builtin_module_names:
        return False
    file = getattr(module, "__file__", None)
    if file:
        return not _is_library_path(file)
    paths = list(getattr(module, "__path__", []) or [])
    if paths:  # a namespace package
        return not all(_is_library_path(p) for p in paths)
    # No file: a frozen standard module, or one made in memory (a REPL's __main__).
    return top not in sys.stdlib_module_names


def _is_project_function(func: types.FunctionType) -> bool:
    if str(func.__module__).partition(".")[0] == "mloop":
        return False
    filename = func.__code__.co_filename
    if filename.startswith("<frozen "):
        return False
    if filename.startswith("<"):  # exec, a REPL, a notebook cell: the user's own code
        return True
    return not _is_library_path(filename)


def _is_project_class(cls: type) -> bool:
    module = sys.modules.get(cls.__module__)
    if module is None:
        return cls.__module__.partition(".")[0] not in ("mloop", "builtins")
    return _is_project_module(module)


@functools.cache
def _packages() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distributions_of(top_level: str) -> list[str]:
    return sorted(set(_packages().get(top_level, [])))


@functools.cache
def _version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"
