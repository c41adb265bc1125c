"""Model URIs: ``models:/name/4``, ``models:/name@champion``, ``models:/name`` (the newest).

The forms MLflow users know, checked strictly so that a typo is an error that says what a URI
looks like, not a "not found" for a model nobody meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mloop.errors import InvalidInput
from mloop.store.registry import check_alias, check_model_name

__all__ = ["ModelRef", "parse_model_uri"]

_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+|latest)|@(?P<alias>[^/@]+))?/?")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: a name and a version number, an alias, or neither (newest)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}"


def parse_model_uri(uri: str) -> ModelRef:
    """Parse ``models:/name/N``, ``models:/name@alias``, ``models:/name[/latest]``; also accepts
    the short forms ``name/N``, ``name@alias`` and ``name``. Raises InvalidInput."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput(f"a model URI is a non-empty string, got {uri!r}")
    text = uri.strip()
    if not text.startswith("models:/"):
        if ":" in text:
            raise InvalidInput(
                f"model URI {uri!r} must start with models:/ (e.g. models:/fraud-detector@champion"
                " or models:/fraud-detector/3)"
            )
        text = "models:/" + text
    match = _URI.fullmatch(text)
    if match is None:
        raise InvalidInput(
            f"model URI {uri!r} is not models:/NAME, models:/NAME/VERSION or models:/NAME@ALIAS"
        )
    name = check_model_name(match["name"])
    if match["alias"] is not None:
        return ModelRef(name, alias=check_alias(match["alias"]))
    if match["version"] not in (None, "latest"):
        version = int(match["version"])
        if version < 1:
            raise InvalidInput(f"model version numbers start at 1, got {version} in {uri!r}")
        return ModelRef(name, version=version)
    return ModelRef(name)
