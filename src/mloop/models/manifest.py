"""The package manifest: what a packaged-model folder holds, and the digest of every file.

The manifest is the JSON file :data:`MANIFEST_FILE` at the top of the folder. Its canonical
form (sorted keys, no spaces, UTF-8) is hashed into :attr:`PackageManifest.digest`, which names
the package: since it lists the SHA-256 of every other file, it covers all the package's bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from mloop.errors import InvalidInput
from mloop.models.signature import Signature

__all__ = ["FORMAT_VERSION", "MANIFEST_FILE", "FileDigest", "PackageManifest"]

MANIFEST_FILE = "mloop-model.json"
"""Name of the manifest inside a packaged-model folder."""

FORMAT_VERSION = 1
"""Version of the manifest layout; a newer one is refused with a clear error."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEYS = {
    "format_version",
    "flavor",
    "flavor_version",
    "flavor_config",
    "mloop_version",
    "python_version",
    "signature",
    "input_example",
    "requirements",
    "files",
    "metadata",
    "created_at",
}


@dataclass(frozen=True)
class FileDigest:
    """The SHA-256 (hex) and size in bytes of one file of the package."""

    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class PackageManifest:
    """Everything recorded about a packaged model; see docs/models.md for each field."""

    flavor: str
    flavor_version: str
    mloop_version: str
    python_version: str
    signature: Signature | None
    input_example: str | None
    requirements: list[str]
    files: dict[str, FileDigest]
    metadata: dict[str, Any]
    created_at: int
    flavor_config: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the manifest file's content)."""
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "flavor_version": self.flavor_version,
            "flavor_config": self.flavor_config,
            "mloop_version": self.mloop_version,
            "python_version": self.python_version,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example": self.input_example,
            "requirements": list(self.requirements),
            "files": {name: d.to_dict() for name, d in sorted(self.files.items())},
            "metadata": self.metadata,
            "created_at": self.created_at,
        }

    def to_json(self) -> str:
        """The canonical JSON text: sorted keys, no insignificant spaces."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical manifest JSON: the packaged model's identity."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, data: Any) -> PackageManifest:
        """Parse and validate a manifest; raise InvalidInput naming the field that is wrong."""
        if not isinstance(data, dict):
            raise InvalidInput(f"model manifest must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - _KEYS
        if unknown:
            raise InvalidInput(
                f"model manifest has unknown field(s): {', '.join(sorted(unknown))}",
                field=sorted(unknown)[0],
            )
        missing = sorted(_KEYS - set(data) - {"flavor_config", "format_version"})
        if missing:
            raise InvalidInput(
                f"model manifest is missing field(s): {', '.join(missing)}", field=missing[0]
            )
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _bad("format_version", "a positive integer", version)
        if version > FORMAT_VERSION:
            raise InvalidInput(
                f"model manifest has format_version {version}; this mloop reads up to "
                f"{FORMAT_VERSION}: upgrade mloop",
                field="format_version",
            )
        for key in ("flavor", "flavor_version", "mloop_version", "python_version"):
            if not isinstance(data[key], str) or not data[key]:
                raise _bad(key, "a non-empty string", data[key])
        config = data.get("flavor_config", {})
        if not isinstance(config, dict):
            raise _bad("flavor_config", "an object", config)
        signature = None
        if data["signature"] is not None:
            try:
                signature = Signature.from_dict(data["signature"])
            except InvalidInput as exc:
                raise InvalidInput(
                    f"model manifest field 'signature' is invalid: {exc.message}",
                    field="signature",
                ) from None
        requirements = data["requirements"]
        if not isinstance(requirements, list) or not all(
            isinstance(r, str) and r.strip() for r in requirements
        ):
            raise _bad("requirements", "a list of non-empty strings", requirements)
        files_raw = data["files"]
        if not isinstance(files_raw, dict):
            raise _bad("files", "an object of file name -> {sha256, size}", files_raw)
        files: dict[str, FileDigest] = {}
        for name, entry in files_raw.items():
            check_file_name(name)
            if (
                not isinstance(entry, dict)
                or set(entry) != {"sha256", "size"}
                or not isinstance(entry["sha256"], str)
                or not _SHA256.fullmatch(entry["sha256"])
                or not isinstance(entry["size"], int)
                or isinstance(entry["size"], bool)
                or entry["size"] < 0
            ):
                raise InvalidInput(
                    f"model manifest field 'files' entry '{name}' must be "
                    f'{{"sha256": <64 lowercase hex>, "size": <bytes>}}, got {entry!r}',
                    field=f"files.{name}",
                )
            files[name] = FileDigest(sha256=entry["sha256"], size=entry["size"])
        example = data["input_example"]
        if example is not None and (not isinstance(example, str) or example not in files):
            raise _bad("input_example", "null or the name of a file listed in 'files'", example)
        if not isinstance(data["metadata"], dict):
            raise _bad("metadata", "an object", data["metadata"])
        created = data["created_at"]
        if not isinstance(created, int) or isinstance(created, bool) or created < 0:
            raise _bad("created_at", "milliseconds since the epoch", created)
        return cls(
            flavor=data["flavor"],
            flavor_version=data["flavor_version"],
            mloop_version=data["mloop_version"],
            python_version=data["python_version"],
            signature=signature,
            input_example=example,
            requirements=list(requirements),
            files=files,
            metadata=data["metadata"],
            created_at=created,
            flavor_config=config,
            format_version=version,
        )


def _bad(key: str, expected: str, got: Any) -> InvalidInput:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidInput(f"model manifest field '{key}' must be {expected}, got {shown}", field=key)


def check_file_name(name: Any) -> str:
    """Refuse a file name that is not a plain relative POSIX path inside the package."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(
            f"model manifest lists a file with an invalid name {name!r}", field="files"
        )
    path = PurePosixPath(name)
    if (
        path.is_absolute()
        or "\\" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
        or name == MANIFEST_FILE
    ):
        raise InvalidInput(
            f"model manifest lists file {name!r}, which is not a plain relative path inside "
            "the package",
            field=f"files.{name}",
        )
    return name
