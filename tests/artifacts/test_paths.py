"""Logical artifact paths: every unsafe shape is refused with a message saying why."""

from __future__ import annotations

import unicodedata

import pytest

from mloop.artifacts.paths import join_artifact_path, validate_artifact_path
from mloop.errors import InvalidArtifactPath, InvalidInput


@pytest.mark.parametrize(
    "path",
    [
        "model.pkl",
        "model/weights.bin",
        "a/b/c/d.txt",
        ".hidden",
        "..hidden",
        "file..txt",
        "a/.config/b",
        "with space/and-dash_underscore.txt",
        "100%.txt",  # a lone '%' is not an escape
        "a%20b.txt",  # decodes to 'a b.txt': harmless, kept as written
        "%41.txt",
        "données/résultat.csv",
        "模型/权重.bin",
        "emoji-\U0001f600.png",
        "zero\u200dwidth-joiner",
        "x" * 255,
        "/".join(["a" * 200] * 5),  # 1004 characters
        "CONFIG/consume.txt",  # starts like a device name but is not one
        "colon:name",
    ],
)
def test_accepts_safe_paths(path: str) -> None:
    assert validate_artifact_path(path) == path


def test_returns_nfc() -> None:
    decomposed = "re\u0301sume\u0301.txt"
    assert validate_artifact_path(decomposed) == unicodedata.normalize("NFC", decomposed)
    assert validate_artifact_path(decomposed) == "r\u00e9sum\u00e9.txt"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        # empty and overlong
        ("", "empty"),
        ("a" * 1025, "longer than 1024"),
        ("/".join(["a" * 250] * 5), "longer than 1024"),
        ("x" * 256, "longer than 255"),
        ("é" * 128, "longer than 255"),  # 256 bytes of UTF-8
        # absolute
        ("/etc/passwd", "absolute"),
        ("/", "absolute"),
        ("//host/share/x", "absolute"),
        ("C:\\Windows\\x", "backslash"),
        ("C:/Windows/x", "Windows drive"),
        ("C:x", "Windows drive"),
        ("c:", "Windows drive"),
        ("~/x", "home folder"),
        ("~root/.ssh/id_rsa", "home folder"),
        # traversal and dot segments
        ("..", "'..' segment"),
        ("../x", "'..' segment"),
        ("a/../../x", "'..' segment"),
        ("a/..", "'..' segment"),
        (".", "'.' segment"),
        ("./x", "'.' segment"),
        ("a/./b", "'.' segment"),
        # empty segments
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a/b/", "empty segment"),
        # backslashes
        ("a\\b", "backslash"),
        ("..\\x", "backslash"),
        ("\\\\host\\share", "backslash"),
        # control and invisible characters
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\rb", "control character"),
        ("a\tb", "control character"),
        ("a\x1bb", "control character"),
        ("a\x7fb", "control character"),
        ("a\x85b", "control character"),
        ("a\u2028b", "U+2028"),
        ("evil\u202egnp.exe", "U+202E"),
        ("a\ud800b", "U+D800"),
        # percent-encoded traversal, at any depth
        ("%2e%2e/x", "'..' segment"),
        ("%2E%2E/x", "'..' segment"),
        ("a/%2e%2e/%2e%2e/x", "'..' segment"),
        ("%2e/x", "'.' segment"),
        (".%2e/x", "'..' segment"),
        ("..%2fx", "percent-encoded '/'"),
        ("..%2Fx", "percent-encoded '/'"),
        ("%2e%2e%2fetc%2fpasswd", "percent-encoded '/'"),
        ("a%2fb", "percent-encoded '/'"),
        ("%2fetc", "percent-encoded '/'"),
        ("%252e%252e%252f", "percent-encoded '/'"),
        ("%252e%252e/x", "'..' segment"),
        ("%25252e%25252e/x", "'..' segment"),
        ("..%5cx", "backslash"),
        ("..%255cx", "backslash"),
        ("a%00b", "control character"),
        ("a%2500b", "control character"),
        ("%0a", "control character"),
        ("a%2f%2fb", "percent-encoded '/'"),
        ("%c0%ae%c0%ae/x", "not valid UTF-8"),
        ("%c0%af", "not valid UTF-8"),
        ("%u002e%u002e/x", "%uXXXX"),
        ("%" + "25" * 10 + "2e", "still percent-encoded"),
        # look-alikes folded by compatibility normalisation
        ("\uff0e\uff0e/x", "'..' segment"),
        ("a/\uff0e\uff0e\uff0fb", "looks like '/'"),
        ("\u2024\u2024/x", "'..' segment"),  # ONE DOT LEADER
        # segments Windows cannot hold
        ("a./b", "ends with a dot"),
        ("a /b", "ends with a dot or a space"),
        ("...", "ends with a dot"),
        ("CON", "device name"),
        ("logs/nul.txt", "device name"),
        ("com1", "device name"),
        ("LPT9.log", "device name"),
        ("AUX .txt", "device name"),
    ],
)
def test_refuses_unsafe_paths(path: str, problem: str) -> None:
    with pytest.raises(InvalidArtifactPath) as info:
        validate_artifact_path(path)
    message = str(info.value)
    assert problem in message
    assert "artifact path" in message
    assert isinstance(info.value, InvalidInput)
    assert info.value.http_status == 400


@pytest.mark.parametrize("value", [None, b"model.pkl", 3, ["a"]])
def test_refuses_non_strings(value: object) -> None:
    with pytest.raises(InvalidArtifactPath, match="must be a string"):
        validate_artifact_path(value)  # type: ignore[arg-type]


def test_message_says_what_to_do() -> None:
    with pytest.raises(InvalidArtifactPath, match="use a relative path") as info:
        validate_artifact_path("../secret")
    assert info.value.to_dict()["error"] == "InvalidArtifactPath"


def test_long_paths_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidArtifactPath) as info:
        validate_artifact_path("../" + "a" * 2000)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("prefix", "name", "joined"),
    [
        ("", "model.pkl", "model.pkl"),
        ("run", "model.pkl", "run/model.pkl"),
        ("a/b", "c/d.txt", "a/b/c/d.txt"),
    ],
)
def test_join(prefix: str, name: str, joined: str) -> None:
    assert join_artifact_path(prefix, name) == joined


@pytest.mark.parametrize(
    ("prefix", "name"),
    [
        ("run", "../x"),
        ("run", "/etc/passwd"),
        ("../run", "x"),
        ("run/", "x"),
        ("run", ""),
        ("a" * 600, "b" * 600),
    ],
)
def test_join_refuses(prefix: str, name: str) -> None:
    with pytest.raises(InvalidArtifactPath):
        join_artifact_path(prefix, name)
