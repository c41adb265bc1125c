"""Logical artifact paths: the only shape of path a run may log an artifact under.

A logical path is relative, POSIX-style (``model/weights.bin``) and can never reach outside the
folder it is joined to, whatever decodes it later: a URL router, a web server, a Windows file
system or a user's shell. Every path that comes from outside passes through
:func:`validate_artifact_path`, which refuses rather than repairs: silently "fixing"
``a/../b`` hides an attack and surprises an honest user alike.

Refused (each with a message naming the problem and what to do instead):

- empty paths, paths over 1024 characters, segments over 255 bytes of UTF-8;
- absolute paths: ``/x``, ``//host/share``, ``C:\\x``, ``C:x``, ``~/x``;
- ``..`` and ``.`` segments, empty segments (``a//b``, ``a/``), backslashes;
- control characters (NUL, newlines, DEL, C1), line separators and bidirectional overrides;
- percent-encoded tricks, at every stage of repeated decoding: ``%2e%2e/``, ``..%2f``,
  ``%252e%252e%252f``, encoded separators (``%2f``, ``%5c``), overlong UTF-8 (``%c0%ae``)
  and IIS-style ``%u002e``;
- look-alike characters that compatibility normalisation turns into ``.`` or ``/``
  (fullwidth ``U+FF0E U+FF0E U+FF0F`` reads as ``../``);
- segments Windows cannot hold: trailing dots or spaces, and device names (``CON``, ``NUL.txt``).

The accepted path is returned in Unicode NFC form, so that one name typed on two systems maps to
one artifact.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

from mloop.errors import InvalidArtifactPath

__all__ = [
    "MAX_PATH_LENGTH",
    "MAX_SEGMENT_BYTES",
    "join_artifact_path",
    "validate_artifact_path",
]

MAX_PATH_LENGTH = 1024
MAX_SEGMENT_BYTES = 255
_MAX_DECODE_ROUNDS = 8

_DRIVE = re.compile(r"^[A-Za-z]:")
_IIS_UNICODE = re.compile(r"%u[0-9A-Fa-f]{4}")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{name}{n}" for name in ("COM", "LPT") for n in "0123456789¹²³"]
)
_HINT = "use a relative path of plain names separated by '/', such as 'model/weights.bin'"


def _refuse(path: str, problem: str, advice: str = _HINT) -> InvalidArtifactPath:
    shown = path if len(path) <= 80 else path[:77] + "..."
    return InvalidArtifactPath(
        f"artifact path {shown!r} is refused: {problem}; {advice}", path=shown
    )


def _decoding_stages(path: str) -> list[str]:
    """The path and each result of percent-decoding it again, until decoding changes nothing."""
    stages = [path]
    current = path
    for _ in range(_MAX_DECODE_ROUNDS):
        try:
            decoded = unquote(current, errors="strict")
        except UnicodeDecodeError:
            raise _refuse(
                path,
                "it holds percent-escapes that are not valid UTF-8 "
                "(overlong encodings such as %c0%ae are a traversal trick)",
            ) from None
        if decoded == current:
            return stages
        stages.append(decoded)
        current = decoded
    raise _refuse(path, f"it is still percent-encoded after {_MAX_DECODE_ROUNDS} decodings")


def _check_characters(original: str, stage: str) -> None:
    for char in stage:
        category = unicodedata.category(char)
        if category == "Cc":
            raise _refuse(original, f"it contains the control character {char!r}", "remove it")
        if category in ("Zl", "Zp", "Cs") or char in _BIDI:
            raise _refuse(
                original,
                f"it contains the invisible or unpaired character U+{ord(char):04X}",
                "remove it",
            )
    if "\\" in stage:
        raise _refuse(original, "it contains a backslash", "use '/' to separate folders")


def _check_structure(original: str, stage: str, how: str = "it") -> None:
    if stage.startswith("/"):
        raise _refuse(original, f"{how} is absolute (starts with '/')")
    if _DRIVE.match(stage):
        raise _refuse(original, f"{how} starts with a Windows drive ('{stage[:2]}')")
    segments = stage.split("/")
    if segments[0].startswith("~"):
        raise _refuse(original, f"{how} starts with '~', which shells expand to a home folder")
    for segment in segments:
        if segment == "":
            raise _refuse(original, f"{how} has an empty segment ('//' or a trailing '/')")
        if segment == "..":
            raise _refuse(original, f"{how} has a '..' segment, which would leave its folder")
        if segment == ".":
            raise _refuse(original, f"{how} has a '.' segment")


def _check_segments(original: str, path: str) -> None:
    for segment in path.split("/"):
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _refuse(
                original,
                f"the segment {segment[:20]!r}... is longer than {MAX_SEGMENT_BYTES} bytes",
                "shorten it",
            )
        if segment.endswith((".", " ")):
            raise _refuse(
                original,
                f"the segment {segment!r} ends with a dot or a space, which Windows drops",
                "remove the trailing character",
            )
        stem = segment.split(".", 1)[0].rstrip(" ").upper()
        if stem in _WINDOWS_DEVICES:
            raise _refuse(
                original,
                f"the segment {segment!r} is a Windows device name",
                "rename it",
            )


def validate_artifact_path(path: str) -> str:
    """Return ``path`` as a safe relative POSIX logical path (NFC) or raise InvalidArtifactPath."""
    if not isinstance(path, str):
        raise InvalidArtifactPath(
            f"artifact path must be a string, got {type(path).__name__}; {_HINT}"
        )
    if path == "":
        raise _refuse(path, "it is empty")
    if len(path) > MAX_PATH_LENGTH:
        raise _refuse(path, f"it is longer than {MAX_PATH_LENGTH} characters", "shorten it")
    _check_characters(path, path)
    normal = unicodedata.normalize("NFC", path)
    if _IIS_UNICODE.search(normal):
        raise _refuse(normal, "it contains a '%uXXXX' escape", "write the character itself")
    stages = _decoding_stages(normal)
    separators = normal.count("/")
    for index, stage in enumerate(stages):
        _check_characters(normal, stage)
        if index and stage.count("/") != separators:
            raise _refuse(
                normal,
                "it contains a percent-encoded '/' (such as %2f or %252f)",
                "write '/' itself to separate folders, or choose a name without one",
            )
        _check_structure(normal, stage, "once decoded, it" if index else "it")
        folded = unicodedata.normalize("NFKC", stage)
        if folded != stage:
            _check_characters(normal, folded)
            if folded.count("/") != stage.count("/"):
                raise _refuse(
                    normal, "it contains a character that looks like '/' (such as U+FF0F)"
                )
            _check_structure(normal, folded, "read with look-alike characters folded, it")
    _check_segments(normal, normal)
    return normal


def join_artifact_path(prefix: str, name: str) -> str:
    """Join two logical paths (``prefix`` may be empty) and validate the result."""
    name = validate_artifact_path(name)
    if prefix == "":
        return name
    return validate_artifact_path(f"{validate_artifact_path(prefix)}/{name}")
