"""Replacing a library's ``fit`` (or ``train``) with a logging wrapper, and putting it back.

A :class:`Patch` remembers exactly what the owner (a class or a module) held under the name
before, so :func:`restore` makes ``LogisticRegression.fit is original`` true again. Wrappers
carry the function they wrap as ``__mloop_autolog_original__`` (and ``__wrapped__``, so
``inspect.signature`` and scikit-learn's parameter checks see the original signature).

"Inside an autologged call" is a :class:`contextvars.ContextVar`, so each thread (and asyncio
task) has its own: a Pipeline fitting its steps, or a search fitting its candidates, in the same
thread logs once, at the outermost call, while another thread's fits are not affected.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ORIGINAL_ATTR",
    "Patch",
    "apply",
    "inside_autolog",
    "original_of",
    "restore",
    "silenced",
]

ORIGINAL_ATTR: Final = "__mloop_autolog_original__"

_inside: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "mloop_autolog_inside", default=False
)


class _Missing:
    """Marks a name the owner did not hold itself (it was inherited, or absent)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


def inside_autolog() -> bool:
    """True while this thread (or task) is inside an autologged call."""
    return _inside.get()


@contextmanager
def silenced() -> Iterator[None]:
    """Mark this thread as inside an autologged call: nested fits call straight through."""
    token = _inside.set(True)
    try:
        yield
    finally:
        _inside.reset(token)


def original_of(function: Any) -> Any:
    """The function a wrapper replaced (itself when it is not one of ours)."""
    while hasattr(function, ORIGINAL_ATTR):
        function = getattr(function, ORIGINAL_ATTR)
    return function


@dataclass(frozen=True)
class Patch:
    """One replaced attribute: where, which name, and what the owner held before."""

    owner: Any
    name: str
    before: Any
    wrapper: Any


Interceptor = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]


def apply(owner: Any, name: str, intercept: Interceptor) -> Patch:
    """Replace ``owner.name`` by a wrapper that hands ``(original, args, kwargs)`` to
    ``intercept``; return the record that :func:`restore` undoes."""
    before = vars(owner).get(name, _MISSING)
    original = original_of(getattr(owner, name))

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return original(*args, **kwargs)
        return intercept(original, args, kwargs)

    setattr(wrapper, ORIGINAL_ATTR, original)
    setattr(owner, name, wrapper)
    return Patch(owner, name, before, wrapper)


def restore(patch: Patch) -> None:
    """Put back what the owner held before the patch (or drop the name it did not hold)."""
    if vars(patch.owner).get(patch.name, _MISSING) is not patch.wrapper:
        return  # someone else replaced it since; leave their attribute alone
    if patch.before is _MISSING:
        delattr(patch.owner, patch.name)
    else:
        setattr(patch.owner, patch.name, patch.before)
