"""The code part of a step's cache key: what changes it, and what must not."""

from __future__ import annotations

import importlib
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from mloop.errors import InvalidInput
from mloop.pipelines import CodeDigest, code_digest

PKG = "cdproj"

_SOURCES: dict[str, str] = {
    "__init__.py": "",
    "deep.py": """
        OFFSET = 1

        def normalise(x):
            return x - OFFSET
    """,
    "helpers.py": '''
        from cdproj.deep import normalise

        def clean(x):
            """Clean a value."""
            return normalise(x) + 0

        def other(x):
            return x
    ''',
    "features.py": """
        def make(y):
            return y * 3
    """,
    "model.py": """
        class Scaler:
            def __init__(self, k):
                self.k = k

            def apply(self, x):
                return self._mul(x)

            def _mul(self, x):
                return x * self.k

            def copy(self):
                return Scaler(self.k)
    """,
    "steps.py": '''
        import functools
        import json

        import numpy as np

        import mloop.errors
        from cdproj import helpers
        from cdproj.features import make
        from cdproj.model import Scaler

        SCALE = 2
        CONFIG = {"b": [1, 2], "a": (3.0, None)}

        def opts(**kwargs):
            return lambda f: f

        @opts(retries=2)
        def step(x):
            """Step docstring."""
            y = helpers.clean(x)  # tidy the input
            return make(y) * SCALE

        def unrelated():
            return 1

        def uses_numpy(x):
            return np.asarray(x).sum()

        def uses_json_and_mloop(x):
            if not x:
                raise mloop.errors.InvalidInput("empty")
            return json.dumps(x)

        def uses_config(x):
            return CONFIG["b"][0] + x

        def uses_class(x):
            return Scaler(2).apply(x)

        lam = lambda x: helpers.clean(x) + 1

        def recursive(n):
            return 0 if n == 0 else ping(n)

        def ping(n):
            return recursive(n - 1)

        def make_step(k, model):
            def inner(x):
                return helpers.clean(x) * k + model(x)
            return inner

        def with_default(x, fn=helpers.other, n=SCALE):
            return fn(x) * n

        def logged(func):
            @functools.wraps(func)
            def wrapper(*args):
                return func(*args)
            return wrapper

        @functools.lru_cache(maxsize=8)
        def cached(x):
            return helpers.other(x)

        @logged
        def decorated(x):
            return make(x)

        def uses_decorated(x):
            return cached(x) + decorated(x)
    ''',
}


BASE = {name: textwrap.dedent(text).lstrip() for name, text in _SOURCES.items()}


def _variant(**changes: str) -> dict[str, str]:
    files = dict(BASE)
    files.update(changes)
    return files


def _replace(file: str, old: str, new: str) -> dict[str, str]:
    assert old in BASE[file], old
    return _variant(**{file: BASE[file].replace(old, new)})


@pytest.fixture
def load(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], ModuleType]]:
    """Write a version of the project under a fresh folder and import ``cdproj.steps`` from it."""
    counter = itertools.count()

    def purge() -> None:
        for name in [n for n in sys.modules if n == PKG or n.startswith(PKG + ".")]:
            del sys.modules[name]

    def _load(files: dict[str, str]) -> ModuleType:
        root = tmp_path / f"v{next(counter)}"
        for rel, text in files.items():
            path = root / PKG / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        purge()
        sys.path.insert(0, str(root))
        importlib.invalidate_caches()
        try:
            return importlib.import_module(f"{PKG}.steps")
        finally:
            sys.path.remove(str(root))

    yield _load
    purge()


def _digest(load: Callable[[dict[str, str]], ModuleType], files: dict[str, str], name: str) -> Any:
    return code_digest(getattr(load(files), name))


def test_same_code_gives_the_same_digest_in_a_fresh_process(load, tmp_path: Path) -> None:
    here = _digest(load, BASE, "step")
    root = tmp_path / "v0"  # the folder the first load wrote
    script = "from cdproj.steps import step; from mloop.pipelines import code_digest; "
    script += "d = code_digest(step); print(d.digest); print(len(d.parts))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *sys.path])
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [here.digest, str(len(here.parts))]
    assert _digest(load, BASE, "step") == here  # and from another folder, in this process


def test_what_goes_into_a_step(load) -> None:
    d = code_digest(load(BASE).step)
    assert isinstance(d, CodeDigest)
    assert len(d.digest) == 64 and int(d.digest, 16) >= 0
    assert set(d.parts) == {
        "cdproj.steps.step",
        "cdproj.helpers.clean",
        "cdproj.deep.normalise",
        "cdproj.deep.OFFSET",
        "cdproj.features.make",
        "cdproj.steps.SCALE",
    }
    assert not any(k.startswith("note:") for k in d.parts)


def test_comments_whitespace_formatting_and_docstrings_do_not_count(load) -> None:
    base = _digest(load, BASE, "step")
    steps = (
        "# a new first line shifts every line number\n\n"
        + BASE["steps.py"]
        .replace('"""Step docstring."""', '"""Another docstring,\n    over two lines."""')
        .replace("y = helpers.clean(x)  # tidy the input", "y = helpers.clean(\n        x,\n    )")
        .replace("return make(y) * SCALE", "return (make(y)\n            * SCALE)  # scaled")
        .replace("@opts(retries=2)", "@opts(retries=5)")  # a step's options are not its code
    )
    helpers = BASE["helpers.py"].replace('"""Clean a value."""', "# no docstring any more")
    changed = _digest(load, _variant(**{"steps.py": steps, "helpers.py": helpers}), "step")
    assert changed.diff(base) == []
    assert changed.digest == base.digest


def test_a_change_two_calls_deep_is_named(load) -> None:
    base = _digest(load, BASE, "step")
    changed = _digest(load, _replace("deep.py", "return x - OFFSET", "return x + OFFSET"), "step")
    assert changed.digest != base.digest
    assert base.diff(changed) == ["changed: cdproj.deep.normalise"]


def test_an_unrelated_function_does_not_count(load) -> None:
    base = _digest(load, BASE, "step")
    files = _replace("steps.py", "return 1", "return 2")
    files["helpers.py"] = BASE["helpers.py"].replace("return x\n", "return -x\n")
    files["features.py"] = BASE["features.py"] + "\ndef extra():\n    return 4\n"
    assert _digest(load, files, "step") == base


def test_module_constants_count(load) -> None:
    base = _digest(load, BASE, "step")
    changed = _digest(load, _replace("steps.py", "SCALE = 2", "SCALE = 3"), "step")
    assert base.diff(changed) == ["changed: cdproj.steps.SCALE"]
    deep = _digest(load, _replace("deep.py", "OFFSET = 1", "OFFSET = 1.0"), "step")
    assert base.diff(deep) == ["changed: cdproj.deep.OFFSET"]
    # Containers are hashed by content, with dicts and sets in sorted order.
    config = _digest(load, BASE, "uses_config")
    reordered = '{"a": (3.0, None), "b": [1, 2]}'
    assert (
        _digest(
            load, _replace("steps.py", '{"b": [1, 2], "a": (3.0, None)}', reordered), "uses_config"
        )
        == config
    )
    bumped = _digest(load, _replace("steps.py", '"b": [1, 2]', '"b": [1, 3]'), "uses_config")
    assert config.diff(bumped) == ["changed: cdproj.steps.CONFIG"]


def test_libraries_count_by_version_not_source(load) -> None:
    d = _digest(load, BASE, "uses_numpy")
    assert d.parts["dist:numpy"] == np.__version__
    assert set(d.parts) == {"cdproj.steps.uses_numpy", "dist:numpy"}
    other = _digest(load, BASE, "uses_json_and_mloop")
    assert other.parts["dist:python"].endswith(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert "dist:mloop" in other.parts  # mloop is a library here, never project code
    assert not any(k.startswith("mloop.") for k in other.parts)
    old = CodeDigest(d.digest, {**d.parts, "dist:numpy": "1.0"})
    assert old.diff(d) == [f"changed: dist:numpy (1.0 -> {np.__version__})"]


def test_recursion_and_cycles_terminate(load) -> None:
    d = _digest(load, BASE, "recursive")
    assert set(d.parts) == {"cdproj.steps.recursive", "cdproj.steps.ping"}
    assert _digest(load, BASE, "ping").digest != d.digest  # the root is part of the key


def test_methods_of_a_project_class_count(load) -> None:
    base = _digest(load, BASE, "uses_class")
    assert "cdproj.model.Scaler" in base.parts
    changed = _digest(
        load, _replace("model.py", "return x * self.k", "return x * self.k * 2"), "uses_class"
    )
    assert base.diff(changed) == ["changed: cdproj.model.Scaler"]


def test_a_lambda_step(load) -> None:
    base = _digest(load, BASE, "lam")
    assert set(base.parts) >= {
        "cdproj.steps.<lambda>",
        "cdproj.helpers.clean",
        "cdproj.deep.normalise",
    }
    assert not any(k.startswith("note:") for k in base.parts)  # found in source, not bytecode
    spaced = _replace(
        "steps.py",
        "lam = lambda x: helpers.clean(x) + 1",
        "lam = lambda x: (helpers.clean(x)\n    + 1)",
    )
    assert _digest(load, spaced, "lam") == base
    changed = _replace(
        "steps.py", "lambda x: helpers.clean(x) + 1", "lambda x: helpers.clean(x) + 2"
    )
    assert base.diff(_digest(load, changed, "lam")) == ["changed: cdproj.steps.<lambda>"]
    deep = _replace("deep.py", "return x - OFFSET", "return x * OFFSET")
    assert base.diff(_digest(load, deep, "lam")) == ["changed: cdproj.deep.normalise"]


def test_closures_and_defaults_count(load) -> None:
    steps = load(BASE)
    two, three = steps.make_step(2, steps.unrelated), steps.make_step(3, steps.unrelated)
    d2, d3 = code_digest(two), code_digest(three)
    assert d2.digest != d3.digest
    assert d2.diff(d3) == ["changed: cdproj.steps.make_step.<locals>.inner"]
    assert "cdproj.steps.unrelated" in d2.parts  # a function held in a closure is followed
    assert "cdproj.helpers.clean" in d2.parts
    opaque = code_digest(steps.make_step(2, np.float32))
    assert "dist:numpy" in opaque.parts
    with_object = code_digest(steps.make_step(object(), steps.unrelated))
    assert "only its type counts" in with_object.parts["note:cdproj.steps.make_step.<locals>.inner"]

    base = code_digest(steps.with_default)
    assert "cdproj.helpers.other" in base.parts  # a function given as a default is followed
    changed = _digest(load, _replace("steps.py", "SCALE = 2", "SCALE = 4"), "with_default")
    assert base.diff(changed) == ["changed: cdproj.steps.with_default"]


def test_decorated_helpers_are_followed_to_the_function_inside(load) -> None:
    base = _digest(load, BASE, "uses_decorated")
    assert {"cdproj.steps.cached", "cdproj.steps.logged.<locals>.wrapper"} <= set(base.parts)
    assert {"cdproj.steps.decorated", "cdproj.features.make", "cdproj.helpers.other"} <= set(
        base.parts
    )
    changed = _replace("helpers.py", "return x\n", "return -x\n")
    assert base.diff(_digest(load, changed, "uses_decorated")) == ["changed: cdproj.helpers.other"]
    changed = _replace("features.py", "y * 3", "y * 4")
    assert base.diff(_digest(load, changed, "uses_decorated")) == ["changed: cdproj.features.make"]


def test_functions_without_source_fall_back_to_bytecode() -> None:
    def build(body: str) -> Any:
        namespace: dict[str, Any] = {"__name__": "made_by_exec"}
        exec(f"K = 3\ndef f(x):\n    return {body}\n", namespace)
        return namespace["f"]

    first, again = code_digest(build("x * K")), code_digest(build("x * K"))
    assert first == again
    assert "bytecode" in first.parts["note:made_by_exec.f"]
    assert "made_by_exec.K" in first.parts
    assert code_digest(build("x + K")).digest != first.digest


@pytest.mark.parametrize("bad", [len, 42, np.add, "step"])
def test_things_without_python_code_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInput, match="has no Python source or bytecode"):
        code_digest(bad)  # type: ignore[arg-type]
