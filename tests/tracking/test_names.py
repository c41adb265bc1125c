"""Naming rules and value limits (no store needed)."""

from __future__ import annotations

import numpy as np
import pytest

from mloop.errors import InvalidInput, InvalidName, PayloadTooLarge
from mloop.tracking import names


@pytest.mark.parametrize(
    "key", ["loss", "val/loss", "a b", "lr-0.1", "ümlaut_ключ", "数字1", "a.b"]
)
def test_valid_keys(key: str) -> None:
    assert names.validate_key(key, "metric") == key


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("", "empty"),
        ("x" * 251, "limit is 250"),
        ("/abs", "starts with '/'"),
        ("a/../b", "'..' segment"),
        ("..", "'..' segment"),
        ("a\x00b", "contains"),
        ("a\nb", "contains"),
        ("a;b", "contains ';'"),
        (" lead", "whitespace"),
        (3, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_invalid_keys_name_the_rule(key: object, rule: str) -> None:
    with pytest.raises(InvalidName, match="param key") as info:
        names.validate_key(key, "param")
    assert rule in str(info.value)


def test_reserved_tag_prefix() -> None:
    with pytest.raises(InvalidName, match="reserved"):
        names.validate_key("mloop.source.git_commit", "tag")
    assert names.validate_key("mloop.note", "tag", system=True) == "mloop.note"
    assert names.validate_key("mloop.x", "metric") == "mloop.x"  # only tags are reserved


@pytest.mark.parametrize("name", ["", " x", "x ", "a\tb", "a\x07b", "x" * 257, 5])
def test_invalid_names(name: object) -> None:
    with pytest.raises(InvalidName):
        names.validate_name(name, "run")


def test_valid_names() -> None:
    assert names.validate_name("baseline (v2) — ünïcode", "run")
    assert names.validate_name("x" * 256, "experiment")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (1e-20, "1e-20"),
        (3, "3"),
        (True, "True"),
        ("s", "s"),
        (None, "None"),
        (np.float64(0.1), "0.1"),
        (np.float32(0.5), "0.5"),
        (np.int64(7), "7"),
        ([1, 2], "[1, 2]"),
    ],
)
def test_param_values_are_stringified(value: object, text: str) -> None:
    assert names.param_value("k", value) == text


def test_value_limits() -> None:
    assert names.param_value("k", "x" * 6000)
    with pytest.raises(PayloadTooLarge, match=r"'k'.*6000") as info:
        names.param_value("k", "x" * 6001)
    assert info.value.details["limit"] == 6000
    assert names.tag_value("t", "x" * 8000)
    with pytest.raises(PayloadTooLarge, match="8000"):
        names.tag_value("t", "x" * 8001)
    with pytest.raises(InvalidInput, match="NUL"):
        names.tag_value("t", "a\x00")


@pytest.mark.parametrize("value", [1, 1.5, float("nan"), float("inf"), np.float32(2), np.int8(3)])
def test_metric_values_accepted(value: object) -> None:
    assert isinstance(names.metric_value("m", value), float)


@pytest.mark.parametrize("value", [True, "1.0", None, [1], 10**400, complex(1, 1)])
def test_metric_values_refused_naming_the_key(value: object) -> None:
    with pytest.raises(InvalidInput, match="'m'"):
        names.metric_value("m", value)


def test_steps() -> None:
    assert names.validate_step("m", np.int64(5)) == 5
    for bad in (1.0, True, "1", 2**63, -(2**63) - 1):
        with pytest.raises(InvalidInput):
            names.validate_step("m", bad)


def test_generated_run_names_are_readable() -> None:
    generated = {names.generate_run_name() for _ in range(50)}
    assert len(generated) > 40
    for name in generated:
        adjective, noun, number = name.split("-")
        assert adjective.isalpha() and noun.isalpha() and len(number) == 3
        names.validate_name(name, "run")
