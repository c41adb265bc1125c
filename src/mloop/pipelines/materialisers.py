"""Materialisers: how a step's output becomes files, and how those files become the value again.

A :class:`Materialiser` writes one kind of value into an empty folder and returns JSON-able
metadata (kind, shape, and the digest of the canonical content where one exists); it reads the
value back from that folder. The built-ins are tried in order:

==================  ==========================================================================
``pandas``          a pandas DataFrame as Parquet (index and dtypes kept through pandas
                    metadata); ``digest`` is the :func:`~mloop.data.digest.table_digest`
``arrow``           a pyarrow Table as Parquet, with its ``table_digest``
``polars``          a polars DataFrame as Parquet (only when polars is installed)
``numpy``           an ndarray as ``.npy``, never pickled: object arrays are refused
``json``            None, bools, ints, floats (NaN and infinities too), strings, and lists,
                    tuples and str-keyed dicts of those; tuples come back as tuples
``model``           a model of a native flavor (scikit-learn, XGBoost, LightGBM, ONNX) as a
                    packaged model (:func:`~mloop.models.save_model`)
==================  ==========================================================================

then the materialisers registered with :func:`register_materialiser`, and last, **only** when the
caller passes ``allow_pickle=True``, the two that pickle: ``model-pyfunc`` (any other object with
``predict``, as a pyfunc package) and ``pickle`` (anything). Loading either of those requires
``trusted=True`` and is refused before a byte is read, because unpickling runs code chosen by
whoever wrote the file.

:func:`materialise` returns an :class:`OutputRecord` that names the materialiser and its version
(part of a step's cache key) and the SHA-256 and size of every file written;
:func:`dematerialise` checks every file against that record before the value is loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import pickle
import platform
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from mloop.artifacts.cas import hash_file
from mloop.data.digest import table_digest
from mloop.data.io import read_table, write_table
from mloop.errors import (
    AlreadyExists,
    DigestMismatch,
    Forbidden,
    IntegrityError,
    InvalidInput,
    NotFound,
)

__all__ = [
    "ArrowMaterialiser",
    "JsonMaterialiser",
    "Materialiser",
    "ModelMaterialiser",
    "NumpyMaterialiser",
    "OutputRecord",
    "PandasMaterialiser",
    "PickleMaterialiser",
    "PolarsMaterialiser",
    "PyfuncModelMaterialiser",
    "dematerialise",
    "materialise",
    "materialiser_for",
    "register_materialiser",
    "registered_materialisers",
    "unregister_materialiser",
]

_TABLE_FILE = "table.parquet"
_ARRAY_FILE = "array.npy"
_JSON_FILE = "value.json"
_MODEL_FOLDER = "model"
_PICKLE_FILE = "value.pkl"
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class Materialiser(ABC):
    """Writes one kind of step output into a folder and reads it back.

    ``name`` identifies it in an :class:`OutputRecord`; ``version`` is part of a step's cache
    key, so bump it whenever the files written for a value change. A materialiser whose
    ``load`` runs code from the files (pickle) sets ``executes_code``: it is used only when the
    caller allows pickling, and its outputs load only with ``trusted=True``.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    executes_code: ClassVar[bool] = False

    @abstractmethod
    def handles(self, value: Any) -> bool:
        """True when this materialiser can save ``value``; cheap, and never raises."""

    @abstractmethod
    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        """Write ``value`` into the empty ``folder``; return JSON-able metadata about it."""

    @abstractmethod
    def load(self, folder: Path, metadata: dict[str, Any], *, trusted: bool) -> Any:
        """Read the value back from a folder whose files were already verified."""


def _qualname(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _table_metadata(kind: str, table: pa.Table) -> dict[str, Any]:
    return {
        "kind": kind,
        "rows": table.num_rows,
        "columns": list(table.schema.names),
        "types": [str(t) for t in table.schema.types],
        "digest": table_digest(table),
    }


class PandasMaterialiser(Materialiser):
    """A pandas DataFrame as Parquet; the index, column labels and dtypes come back as they were
    (through the pandas metadata pyarrow stores), and ``digest`` covers the index columns."""

    name = "pandas"

    def handles(self, value: Any) -> bool:
        return isinstance(value, pd.DataFrame)

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        frame: pd.DataFrame = value
        labels = list(frame.columns)
        if not isinstance(frame.columns, pd.MultiIndex) and not all(
            isinstance(c, str) for c in labels
        ):
            odd = [repr(c) for c in labels if not isinstance(c, str)][:5]
            raise InvalidInput(
                f"cannot store a DataFrame as Parquet: column labels must be strings, found "
                f"{', '.join(odd)}; rename them (df.columns = df.columns.astype(str)) or return "
                "an ndarray",
                columns=odd,
            )
        try:
            table = pa.Table.from_pandas(frame, preserve_index=None)
        except (pa.ArrowException, ValueError) as exc:  # mixed object columns, duplicate labels
            raise InvalidInput(
                f"cannot store a DataFrame as Parquet: {_one_line(str(exc))}; cast mixed "
                "object columns to one type (e.g. .astype(str)) and give columns unique labels",
            ) from None
        write_table(table, folder / _TABLE_FILE)
        metadata = _table_metadata("dataframe", table)
        metadata["index"] = [None if n is None else str(n) for n in frame.index.names]
        metadata["dtypes"] = [str(t) for t in frame.dtypes]
        return metadata

    def load(self, folder: Path, metadata: dict[str, Any], *, trusted: bool) -> Any:
        return read_table(folder / _TABLE_FILE).to_pandas()


class ArrowMaterialiser(Materialiser):
    """A pyarrow Table as Parquet, its schema (and schema metadata) kept."""

    name = "arrow"

    def handles(self, value: Any) -> bool:
        return isinstance(value, pa.Table)

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        write_table(value, folder / _TABLE_FILE)
        return _table_metadata("arrow-table", value)

    def load(self, folder: Path, metadata: dict[str, Any], *, trusted: bool) -> Any:
        return read_table(folder / _TABLE_FILE)


class PolarsMaterialiser(Materialiser):
    """A polars DataFrame as Parquet (through Arrow); polars is imported only when seen."""

    name = "polars"

    def handles(self, value: Any) -> bool:
        module = type(value).__module__ or ""
        if module.split(".")[0] != "polars":
            return False
        try:
            polars = importlib.import_module("polars")
        except ImportError:
            return False
        return isinstance(value, polars.DataFrame)

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        table = value.to_arrow()
        write_table(table, folder / _TABLE_FILE)
        return _table_metadata("polars-dataframe", table)

    def load(self, folder: Path, metadata: dict[str, Any], *, trusted: bool) -> Any:
        from mloop.models.flavors.base import require

        polars = require("polars", "polars", "loading a polars DataFrame output")
        return polars.from_arrow(read_table(folder / _TABLE_FILE))


def _is_plain_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and not isinstance(value, np.ma.MaskedArray | np.matrix)


class NumpyMaterialiser(Materialiser):
    """An ndarray as ``.npy`` (C order, ``allow_pickle=False``); object arrays are refused.

    ``digest`` is the SHA-256 of the dtype, shape and C-order bytes, so equal arrays get equal
    digests whatever their memory layout.
    """

    name = "numpy"

    def handles(self, value: Any) -> bool:
        return _is_plain_array(value) and not value.dtype.hasobject

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        array: np.ndarray[Any, Any] = value
        if array.dtype.hasobject:
            raise InvalidInput(_object_array_message(array))
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        with (folder / _ARRAY_FILE).open("wb") as out:
            np.save(out, array, allow_pickle=False)
        canonical = hashlib.sha256(f"{array.dtype.str}|{list(array.shape)}|".encode())
        canonical.update(array.reshape(-1).view(np.uint8).data)
        return {
            "kind": "ndarray",
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "digest": canonical.hexdigest(),
        }

    def load(self, folder: Path, metadata: dict[str, Any], *, trusted: bool) -> Any:
        try:
            return np.load(folder / _ARRAY_FILE, allow_pickle=False)
        except ValueError as exc:
            raise InvalidInput(
                f"{_ARRAY_FILE} is not a readable .npy file: {_one_line(str(exc))}",
                file=_ARRAY_FILE,
            ) from None


def _object_array_message(array: np.ndarray[Any, Any]) -> str:
    return (
        f"cannot store an ndarray of dtype {array.dtype} (shape {list(array.shape)}) as .npy: "
        "it holds Python objects, which .npy keeps only by pickling; convert it to a numeric "
        "or string dtype, return a DataFrame, or pass allow_pickle=True (the output then loads "
        "only with trusted=True)"
    )


_JSON_SCALARS = (type(None), bool, int, float, str, np.bool_, np.integer, np.floating)
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_MAX_DEPTH = 200


def _json_problem(value: Any, where: str, depth: int, seen: set[int]) -> str | None:
    """Why ``value`` is not JSON-able, naming the path to the first offending part; else None."""
    if isinstance(value, _JSON_SCALARS):
        return None
    if depth > _MAX_DEPTH:
        return f"{where} is nested more than {_MAX_DEPTH} levels deep"
    if isinstance(value, list | tuple | dict):
        if id(value) in seen:
            return f"{where} contains itself"
        seen.add(id(value))
        try:
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        return f"{where} has a key {key!r} of type {type(key).__name__}, not str"
                    found = _json_problem(item, f"{where}[{key!r}]", depth + 1, seen)
                    if found:
                        return found
            else:
                for i, item in enumerate(value):
                    found = _json_problem(item, f"{where}[{i}]", depth + 1, seen)
                    if found:
                        return found
        finally:
            seen.discard(id(value))
        return None
    return f"{where} is a {_qualname(value)}"


def _encode(value: Any) -> Any:
    """The JSON tree for a JSON-able value: special floats, tuples and dicts whose only key
    starts with ``$`` are tagged (``{"$float": "nan"}``, ``{"$tuple": [...]}``,
    ``{"$dict": {...}}``), so that everything else stays plain JSON."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return {"$float": "nan"}
        if math.isinf(number):
            return {"$float": "inf" if number > 0 else "-inf"}
        return number
    if value is None or isinstance(value, str):
        return None if value is None else str(value)
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    body = {str(k): _encode(v) for k, v in value.items()}
    if len(body) == 1 and next(iter(body)).startswith("$"):
        return {"$dict": body}
    return body


def _decode(node: Any) -> Any:
    if isinstance(node, list):
        return [_decode(v) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((tag, inner),) = node.items()
        if tag == "$float" and inner in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[inner]
        if tag == "$tuple" and isinstance(inner, list):
            return tuple(_decode(v) for v in inner)
        if tag == "$dict" and isinstance(inner, dict):
            return {k: _decode(v) for k, v in inner.items()}
        if tag.startswith("$"):
            raise InvalidInput(f"{_JSON_FILE} holds an unknown tag {tag!r}", file=_JSON_FILE)
    return {k: _decode(v) for k, v in node.items()}


class JsonMaterialiser(Materialiser):
    """JSON-able values as ``value.json``; NaN, infinities and tuples survive the trip.

    numpy scalars (``np.float64`` from a metric, ``np.int64`` from a count) are accepted and come
    back as Python numbers. ``digest`` hashes the value with dict keys sorted, so equal dicts get
    equal digests whatever their key order (the file keeps the order).
    """

    name = "json"

    def handles(self, value: Any) -> bool:
        return _json_problem(value, "value", 0, set()) is None

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        problem = _json_problem(value, "value", 0, set())
        if problem:
            raise InvalidInput(f"cannot store the output as JSON: {problem}")
        tree = _encode(value)
        text = json.dumps(tree, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        (folder / _JSON_FILE).write_text(text + "\n", encoding="utf-8")
        canonical = json.dumps(
            tree, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
        )
        kind = "null" if value is None else type(_decode(tree)).__name__
        return {
            "kind": "json",
            "type": kind,
            "digest": hashlib.sha256(canonical.encode()).hexdigest(),
        }

    def load(self, folder: Path, metadata: dict[str, Any], *, trusted: bool) -> Any:
        try:
            tree = json.loads((folder / _JSON_FILE).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"{_JSON_FILE} is not valid JSON: {exc}", file=_JSON_FILE) from None
        return _decode(tree)


def _flavor_of(value: Any) -> str | None:
    from mloop.models.flavors.base import detect_flavor

    if isinstance(value, type):  # a class is not a model, even one with a predict method
        return None
    try:
        return detect_flavor(value)
    except InvalidInput:
        return None


class ModelMaterialiser(Materialiser):
    """A model of a native, non-pickle flavor, saved as a packaged model under ``model/``.

    Loading verifies the package and returns the library object (the estimator or booster);
    the flavor refuses undeclared types unless ``trusted=True``.
    """

    name = "model"

    def handles(self, value: Any) -> bool:
        return _flavor_of(value) not in (None, "pyfunc")

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        from mloop.models.package import save_model

        manifest = save_model(value, folder / _MODEL_FOLDER)
        return {
            "kind": "model",
            "flavor": manifest.flavor,
            "flavor_version": manifest.flavor_version,
            "class": _qualname(value),
            "package_digest": manifest.digest,
        }

    def load(self, folder: Path, metadata: dict[str, Any], *, trusted: bool) -> Any:
        from mloop.models.package import load_model

        return load_model(folder / _MODEL_FOLDER, trusted=trusted).raw


class PyfuncModelMaterialiser(ModelMaterialiser):
    """Any other object with ``predict`` (e.g. a ``PythonModel``), as a pickled pyfunc package:
    used only with ``allow_pickle=True``; loads only with ``trusted=True``."""

    name = "model-pyfunc"
    executes_code = True

    def handles(self, value: Any) -> bool:
        return _flavor_of(value) == "pyfunc"

    def load(self, folder: Path, metadata: dict[str, Any], *, trusted: bool) -> Any:
        _refuse_untrusted(self, trusted)
        return super().load(folder, metadata, trusted=trusted)


def _pickler() -> tuple[str, Any]:
    try:
        import cloudpickle  # type: ignore[import-untyped]
    except ImportError:
        return "pickle", pickle
    return "cloudpickle", cloudpickle


def _refuse_untrusted(materialiser: Materialiser, trusted: bool) -> None:
    if not trusted:
        raise Forbidden(
            f"this output was stored by the {materialiser.name!r} materialiser, which pickles: "
            "loading it runs code chosen by whoever wrote it; pass trusted=True only if you "
            "trust its source",
            materialiser=materialiser.name,
        )


class PickleMaterialiser(Materialiser):
    """Anything, pickled (cloudpickle when installed, so lambdas and closures work too).

    Chosen only with ``allow_pickle=True`` and only when nothing else handles the value; loads
    only with ``trusted=True``, refused before the file is opened.
    """

    name = "pickle"
    executes_code = True

    def handles(self, value: Any) -> bool:
        return True

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        pickler_name, pickler = _pickler()
        try:
            data = pickler.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # pickling runs user code (__reduce__): any error may come out
            raise InvalidInput(
                f"cannot pickle the output ({_qualname(value)}): {type(exc).__name__}: "
                f"{_one_line(str(exc))}; register a materialiser for this type",
                type=_qualname(value),
            ) from exc
        (folder / _PICKLE_FILE).write_bytes(data)
        return {
            "kind": "pickle",
            "class": _qualname(value),
            "pickler": pickler_name,
            "python": platform.python_version(),
            "digest": hashlib.sha256(data).hexdigest(),
        }

    def load(self, folder: Path, metadata: dict[str, Any], *, trusted: bool) -> Any:
        _refuse_untrusted(self, trusted)
        _, pickler = _pickler()
        return pickler.loads((folder / _PICKLE_FILE).read_bytes())


_BUILTINS: list[Materialiser] = [
    PandasMaterialiser(),
    ArrowMaterialiser(),
    PolarsMaterialiser(),
    NumpyMaterialiser(),
    JsonMaterialiser(),
    ModelMaterialiser(),
]
# Tried last, and only with allow_pickle=True: they are the "explicit trusted pickle" path.
_PICKLING: list[Materialiser] = [PyfuncModelMaterialiser(), PickleMaterialiser()]
_ORDER: list[Materialiser] = list(_BUILTINS)
_BY_NAME: dict[str, Materialiser] = {m.name: m for m in [*_BUILTINS, *_PICKLING]}
_BUILTIN_NAMES = frozenset(_BY_NAME)


def registered_materialisers() -> list[Materialiser]:
    """Every registered materialiser in the order they are tried (pickling ones last)."""
    return [*_ORDER, *_PICKLING]


def register_materialiser(materialiser: Materialiser, *, first: bool = False) -> None:
    """Add a materialiser, tried after the built-ins (or before them with ``first=True``).

    Its name must be new: outputs already stored name the materialiser that reads them back.
    """
    if not isinstance(materialiser, Materialiser):
        raise InvalidInput(
            f"a materialiser must be an instance of a mloop.pipelines.Materialiser subclass, "
            f"not {_qualname(materialiser)}",
        )
    name, version = getattr(materialiser, "name", None), getattr(materialiser, "version", None)
    if not isinstance(name, str) or not _NAME.match(name) or type(version) is not int:
        raise InvalidInput(
            f"materialiser name {name!r} must be 1-64 characters of lowercase letters, digits, "
            f"'_', '.', '-', starting with a letter, and its version an int (not {version!r})",
            name=str(name),
        )
    if name in _BY_NAME:
        raise AlreadyExists(
            f"a materialiser named {name!r} is already registered; choose another name, or "
            "unregister_materialiser(name) first",
            name=name,
        )
    if materialiser.executes_code:
        _PICKLING.insert(0 if first else len(_PICKLING) - 1, materialiser)
    elif first:
        _ORDER.insert(0, materialiser)
    else:
        _ORDER.append(materialiser)
    _BY_NAME[name] = materialiser


def unregister_materialiser(name: str) -> None:
    """Remove a registered materialiser (the built-ins cannot be removed)."""
    if name in _BUILTIN_NAMES:
        raise InvalidInput(f"the built-in materialiser {name!r} cannot be unregistered", name=name)
    found = _BY_NAME.pop(name, None)
    if found is None:
        raise NotFound(f"no materialiser named {name!r} is registered", name=name)
    for group in (_ORDER, _PICKLING):
        if found in group:
            group.remove(found)


def _handles(materialiser: Materialiser, value: Any) -> bool:
    try:
        return bool(materialiser.handles(value))
    except Exception:  # a custom handles() that raises simply does not handle the value
        return False


def materialiser_for(value: Any, *, allow_pickle: bool = False) -> Materialiser:
    """The first materialiser that handles ``value``; pickling ones only with ``allow_pickle``.

    Raises InvalidInput naming the type and the options when none does.
    """
    for materialiser in _ORDER:
        if _handles(materialiser, value):
            return materialiser
    if allow_pickle:
        for materialiser in _PICKLING:
            if _handles(materialiser, value):
                return materialiser
    raise InvalidInput(_refusal(value), type=_qualname(value))


def _refusal(value: Any) -> str:
    if _is_plain_array(value) and value.dtype.hasobject:
        return _object_array_message(value)
    detail = ""
    if isinstance(value, list | tuple | dict):
        problem = _json_problem(value, "value", 0, set())
        if problem:
            detail = f" (not JSON-able: {problem})"
    return (
        f"no materialiser can store a step output of type {_qualname(value)}{detail}; "
        "return a DataFrame, Arrow table, ndarray, JSON-able value or model, register a "
        "materialiser for this type (mloop.pipelines.register_materialiser), or mark the "
        "step allow_pickle=True (its output then loads only with trusted=True)"
    )


@dataclass(frozen=True)
class OutputRecord:
    """How one output was stored: by which materialiser and version, with what metadata, and
    the SHA-256 and size of every file (paths relative to the output's folder, '/'-separated)."""

    materialiser: str
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    files: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """The content digest: the materialiser's canonical ``digest`` where it gives one (equal
        for equal values), else a digest of the files' digests."""
        given = self.metadata.get("digest")
        if isinstance(given, str):
            return given
        listing = "\n".join(f"{p} {sha} {size}" for p, (sha, size) in sorted(self.files.items()))
        return hashlib.sha256(listing.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, read back by :meth:`from_dict`."""
        return {
            "materialiser": self.materialiser,
            "version": self.version,
            "metadata": self.metadata,
            "files": {p: {"sha256": sha, "size": size} for p, (sha, size) in self.files.items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> OutputRecord:
        """Validate and read a record stored with :meth:`to_dict`."""
        if not isinstance(data, dict) or not {"materialiser", "version", "files"} <= data.keys():
            raise InvalidInput("an output record must hold materialiser, version and files")
        name, version, metadata = data["materialiser"], data["version"], data.get("metadata", {})
        if not isinstance(name, str) or not isinstance(version, int) or isinstance(version, bool):
            raise InvalidInput("an output record's materialiser must be a str, its version an int")
        if not isinstance(metadata, dict):
            raise InvalidInput("an output record's metadata must be an object")
        files: dict[str, tuple[str, int]] = {}
        raw = data["files"]
        if not isinstance(raw, dict):
            raise InvalidInput("an output record's files must be an object")
        for path, entry in raw.items():
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("sha256"), str)
                or not isinstance(entry.get("size"), int)
            ):
                raise InvalidInput(f"output record entry for {path!r} needs sha256 and size")
            files[_safe_path(path)] = (entry["sha256"], entry["size"])
        return cls(materialiser=name, version=version, metadata=metadata, files=files)


def _safe_path(path: Any) -> str:
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        raise InvalidInput(f"output file path {path!r} is not a relative '/'-separated path")
    parts = PurePosixPath(path).parts
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "//" in path:
        raise InvalidInput(f"output file path {path!r} must stay inside the output's folder")
    return path


def _walk(folder: Path) -> Iterator[tuple[str, Path]]:
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        for name in sorted(dirs) + sorted(files):
            entry = base / name
            rel = entry.relative_to(folder).as_posix()
            if entry.is_symlink():
                raise IntegrityError(
                    f"output folder {folder} holds a symlink '{rel}'; outputs hold plain files",
                    file=rel,
                )
            if name in files:
                if not entry.is_file():
                    raise IntegrityError(
                        f"output folder {folder} holds '{rel}', which is not a plain file",
                        file=rel,
                    )
                yield rel, entry


def _clear(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def materialise(
    value: Any, folder: str | os.PathLike[str], *, allow_pickle: bool = False
) -> OutputRecord:
    """Store ``value`` in ``folder`` (created if missing, else it must be empty) with the first
    materialiser that handles it; return the record of what was written.

    On failure the folder is left empty. Pickling is used only with ``allow_pickle=True``.
    """
    target = Path(folder)
    materialiser = materialiser_for(value, allow_pickle=allow_pickle)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExists(
            f"cannot store an output in {target}: it exists and is not an empty folder; give a "
            "new folder",
            path=str(target),
        )
    target.mkdir(parents=True, exist_ok=True)
    try:
        metadata = materialiser.save(value, target)
        if not isinstance(metadata, dict):
            raise InvalidInput(
                f"materialiser {materialiser.name!r} returned {_qualname(metadata)} from save(); "
                "it must return a dict of JSON-able metadata",
                materialiser=materialiser.name,
            )
        try:
            json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"materialiser {materialiser.name!r} returned metadata that is not JSON-able: "
                f"{exc}",
                materialiser=materialiser.name,
            ) from None
        files: dict[str, tuple[str, int]] = {}
        for rel, path in _walk(target):
            ref = hash_file(path)
            files[rel] = (ref.digest, ref.size)
    except BaseException:
        _clear(target)
        raise
    return OutputRecord(
        materialiser=materialiser.name,
        version=materialiser.version,
        metadata=metadata,
        files=files,
    )


def dematerialise(
    folder: str | os.PathLike[str], record: OutputRecord, *, trusted: bool = False
) -> Any:
    """Read an output back: check the folder holds exactly the record's files with their sizes
    and SHA-256 digests, then load it with the materialiser the record names.

    Raises Forbidden (before reading anything) for a pickled output without ``trusted=True``,
    DigestMismatch naming a file whose bytes changed, IntegrityError for a missing or extra file.
    """
    target = Path(folder)
    materialiser = _BY_NAME.get(record.materialiser)
    if materialiser is None:
        raise NotFound(
            f"no materialiser named {record.materialiser!r} is registered to read the output "
            f"in {target}; register it (mloop.pipelines.register_materialiser) first",
            materialiser=record.materialiser,
        )
    if record.version > materialiser.version:
        raise InvalidInput(
            f"the output in {target} was written by version {record.version} of materialiser "
            f"{materialiser.name!r}, newer than this one ({materialiser.version}); upgrade the "
            "code that defines it",
            materialiser=materialiser.name,
        )
    if materialiser.executes_code:
        _refuse_untrusted(materialiser, trusted)
    if not target.is_dir():
        raise NotFound(f"no output folder at {target}", path=str(target))
    expected = {_safe_path(p): entry for p, entry in record.files.items()}
    present = dict(_walk(target))
    missing = sorted(set(expected) - set(present))
    if missing:
        raise IntegrityError(
            f"output folder {target} is missing file(s) its record lists: {', '.join(missing)}",
            file=missing[0],
        )
    extra = sorted(set(present) - set(expected))
    if extra:
        raise IntegrityError(
            f"output folder {target} holds file(s) its record does not list: {', '.join(extra)}",
            file=extra[0],
        )
    for rel, (sha256, size) in sorted(expected.items()):
        ref = hash_file(present[rel])
        if ref.size != size or ref.digest != sha256:
            raise DigestMismatch(
                f"file '{rel}' of the output in {target} has sha256 {ref.digest} ({ref.size} "
                f"bytes), the record says {sha256} ({size} bytes): it was modified after it "
                "was stored",
                file=rel,
            )
    return materialiser.load(target, dict(record.metadata), trusted=trusted)
