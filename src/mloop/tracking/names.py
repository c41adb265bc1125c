"""Naming rules and value limits for experiments, runs, params, metrics and tags.

Everything a user logs passes through here *before* it is queued, so a bad call raises at once
and writes nothing. The rules:

- experiment and run names: 1 to 256 characters, no control characters, no leading or trailing
  whitespace;
- metric, param and tag keys: 1 to 250 characters of Unicode letters, digits and ``_ - . / space``,
  not starting with ``/`` and without a ``..`` segment; tag keys starting ``mloop.`` are reserved
  for the values mloop records itself (source, environment, note);
- param values are stringified (floats through ``repr``, so ``0.1`` stays ``0.1``) and hold at
  most 6,000 characters; tag values at most 8,000; a run's note at most 100,000; no value may
  contain NUL;
- metric values are real numbers (``int``, ``float`` or a NumPy scalar; NaN and ±inf are kept),
  never ``bool``, ``str`` or ``None``; steps are integers in the signed 64-bit range.
"""

from __future__ import annotations

import numbers
import random
import unicodedata
from typing import Any, Final

from mloop.errors import InvalidInput, InvalidName, PayloadTooLarge

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_NOTE_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "NOTE_TAG",
    "SYSTEM_TAG_PREFIX",
    "generate_run_name",
    "metric_value",
    "param_value",
    "tag_value",
    "validate_key",
    "validate_name",
    "validate_step",
]

MAX_NAME_LENGTH: Final = 256
MAX_KEY_LENGTH: Final = 250
MAX_PARAM_VALUE_LENGTH: Final = 6_000
MAX_TAG_VALUE_LENGTH: Final = 8_000
MAX_NOTE_LENGTH: Final = 100_000
SYSTEM_TAG_PREFIX: Final = "mloop."
NOTE_TAG: Final = "mloop.note"
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_KEY_PUNCTUATION: Final = frozenset("_-./ ")


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def validate_name(name: object, what: str) -> str:
    """Return ``name`` if it is a valid experiment or run name, else raise InvalidName."""
    if not isinstance(name, str):
        raise InvalidName(
            f"{what} name must be a string, got {type(name).__name__}; pass text such as 'fraud'",
            name=repr(name),
        )
    if not name:
        raise InvalidName(f"{what} name is empty; give 1 to {MAX_NAME_LENGTH} characters")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(
            f"{what} name {_shown(name)} has {len(name)} characters; the limit is "
            f"{MAX_NAME_LENGTH} — shorten it",
            name=name[:MAX_NAME_LENGTH],
        )
    if name != name.strip():
        raise InvalidName(
            f"{what} name {_shown(name)} has leading or trailing whitespace; strip it",
            name=name,
        )
    for char in name:
        if unicodedata.category(char) == "Cc":
            raise InvalidName(
                f"{what} name {_shown(name)} contains the control character {char!r}; remove it",
                name=name,
            )
    return name


def validate_key(key: object, what: str, *, system: bool = False) -> str:
    """Return ``key`` if it is a valid metric, param or tag key, else raise InvalidName.

    ``system=True`` lets mloop itself use the reserved ``mloop.`` prefix for tag keys.
    """
    if not isinstance(key, str):
        raise InvalidName(
            f"{what} key must be a string, got {type(key).__name__} ({key!r}); "
            f"use text such as 'learning_rate'",
            key=repr(key),
        )
    if not key:
        raise InvalidName(f"{what} key is empty; give 1 to {MAX_KEY_LENGTH} characters")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidName(
            f"{what} key {_shown(key)} has {len(key)} characters; the limit is "
            f"{MAX_KEY_LENGTH} — shorten it",
            key=key[:MAX_KEY_LENGTH],
        )
    for char in key:
        if not (char.isalnum() or char in _KEY_PUNCTUATION):
            raise InvalidName(
                f"{what} key {_shown(key)} contains {char!r}; keys may hold letters, digits "
                f"and '_', '-', '.', '/', ' ' only — replace it",
                key=key,
            )
    if key.startswith("/"):
        raise InvalidName(f"{what} key {_shown(key)} starts with '/'; remove it", key=key)
    if ".." in key.split("/"):
        raise InvalidName(
            f"{what} key {_shown(key)} has a '..' segment; rename that segment", key=key
        )
    if key != key.strip():
        raise InvalidName(
            f"{what} key {_shown(key)} has leading or trailing whitespace; strip it", key=key
        )
    if not system and what == "tag" and key.startswith(SYSTEM_TAG_PREFIX):
        raise InvalidName(
            f"tag key {_shown(key)} starts with '{SYSTEM_TAG_PREFIX}', which is reserved for "
            f"what mloop records itself; choose another prefix",
            key=key,
        )
    return key


def _stringify(value: object) -> str:
    # bool before int (bool is an int); Python floats through repr so 0.1 stays "0.1"; NumPy
    # scalars through str, because NumPy 2's repr is "np.float64(0.1)".
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if type(value).__module__ == "numpy":
        return str(value)
    if isinstance(value, float):
        return repr(float(value))
    return str(value)


def _checked(value: str, what: str, key: str, limit: int) -> str:
    if len(value) > limit:
        raise PayloadTooLarge(
            f"{what} {key!r} has a value of {len(value)} characters; the limit is {limit} — "
            f"log long text as an artifact instead (run.log_text)",
            key=key,
            limit=limit,
        )
    if "\x00" in value:
        raise InvalidInput(f"{what} {key!r} has a value containing NUL (\\x00); remove it", key=key)
    return value


def param_value(key: str, value: object) -> str:
    """Stringify a param value and check its limits (6,000 characters, no NUL)."""
    return _checked(_stringify(value), "param", key, MAX_PARAM_VALUE_LENGTH)


def tag_value(key: str, value: object, *, limit: int = MAX_TAG_VALUE_LENGTH) -> str:
    """Stringify a tag value and check its limits (8,000 characters unless told, no NUL)."""
    return _checked(_stringify(value), "tag", key, limit)


def metric_value(key: str, value: Any) -> float:
    """Return a metric value as a float, or raise InvalidInput naming the key.

    The hot path accepts ``float`` and ``int`` without calling this; this is the slow path for
    NumPy scalars and wrong types.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(
            f"metric {key!r} must be a real number (int, float or a NumPy scalar), got "
            f"{type(value).__name__} {_shown(repr(value))}; convert it with float() first",
            key=key,
        )
    try:
        return float(value)
    except (OverflowError, TypeError, ValueError):
        raise InvalidInput(
            f"metric {key!r} value {_shown(repr(value))} does not fit a 64-bit float", key=key
        ) from None


def validate_step(key: str, step: Any) -> int:
    """Return ``step`` as an int if it is an integer in the signed 64-bit range."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInput(
            f"metric {key!r} step must be an integer, got {type(step).__name__} {step!r}",
            key=key,
        )
    checked = int(step)
    if not _INT64_MIN <= checked <= _INT64_MAX:
        raise InvalidInput(
            f"metric {key!r} step {checked} is outside the signed 64-bit range", key=key
        )
    return checked


_ADJECTIVES: Final = (
    "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring", "eager",
    "fancy", "gentle", "golden", "happy", "hidden", "humble", "jolly", "keen", "lively", "lucky",
    "mellow", "merry", "mighty", "nimble", "noble", "polite", "proud", "quick", "quiet", "rapid",
    "royal", "shiny", "silent", "smooth", "snowy", "steady", "sunny", "swift", "tidy", "vivid",
    "warm", "wise", "witty", "zesty",
)  # fmt: skip
_NOUNS: Final = (
    "badger", "bear", "comet", "crane", "dolphin", "eagle", "falcon", "ferret", "finch", "fox",
    "gecko", "heron", "ibis", "jaguar", "koala", "lark", "lemur", "lion", "lynx", "mole",
    "moose", "newt", "orca", "otter", "owl", "panda", "puffin", "quail", "raven", "robin",
    "salmon", "seal", "shark", "sloth", "sparrow", "swan", "tiger", "toad", "trout", "turtle",
    "walrus", "whale", "wolf", "yak",
)  # fmt: skip
# SystemRandom: a forked child must not repeat its parent's sequence of names.
_random = random.SystemRandom()


def generate_run_name() -> str:
    """A readable, unique-ish run name such as ``swift-otter-417``."""
    return f"{_random.choice(_ADJECTIVES)}-{_random.choice(_NOUNS)}-{_random.randrange(1000):03d}"
