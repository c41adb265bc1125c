"""Reading data files: Parquet (a file or a folder of files), CSV and JSON lines, and profiles.

The format comes from the extension (``.parquet``/``.pq``, ``.csv``, ``.json``/``.jsonl``/
``.ndjson``, read as newline-delimited JSON) unless given. Every failure is one
:class:`~mloop.errors.InvalidInput` (or :class:`~mloop.errors.NotFound` for a missing path) whose
message names the file, so that no PyArrow traceback reaches a user.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal, cast, get_args

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_ds
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from mloop.data.profile import DatasetProfile
from mloop.errors import InvalidInput, NotFound

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "DataFormat",
    "format_of",
    "read_profile",
    "read_table",
    "write_profile",
]

DataFormat = Literal["parquet", "csv", "json"]
#: The formats ``read_table`` knows, by the name ``--format`` takes.
FORMATS: tuple[str, ...] = get_args(DataFormat)
#: File extensions and the format each one means.
EXTENSIONS: dict[str, DataFormat] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
_LABELS: dict[str, str] = {"parquet": "Parquet", "csv": "CSV", "json": "JSON lines"}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def format_of(path: str | os.PathLike[str], format: str | None = None) -> DataFormat:
    """The format to read ``path`` as: ``format`` when given, else from its extension."""
    shown = os.fspath(path)
    if format is not None:
        if format.lower() in FORMATS:
            return cast(DataFormat, format.lower())
        raise InvalidInput(
            f"unknown data format {format!r}; known formats: {', '.join(FORMATS)}", format=format
        )
    if Path(path).is_dir():
        return "parquet"
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise InvalidInput(
            f"cannot tell the format of {shown!r} from its extension {suffix or '(none)'!r}; "
            f"use one of {', '.join(EXTENSIONS)} or give the format (--format "
            f"{'|'.join(FORMATS)})",
            path=shown,
        )
    return EXTENSIONS[suffix]


def read_table(path: str | os.PathLike[str], *, format: str | None = None) -> pa.Table:
    """Read a data file (or a folder of Parquet files, as one dataset) into an Arrow table."""
    shown = os.fspath(path)
    target = Path(path)
    if not target.exists():
        raise NotFound(f"no data file at {shown!r}", path=shown)
    fmt = format_of(path, format)
    label = _LABELS[fmt]
    if target.is_file() and target.stat().st_size == 0:
        raise InvalidInput(f"data file {shown!r} is empty (0 bytes)", path=shown)
    try:
        if target.is_dir():
            return _read_folder(target, fmt, shown)
        if fmt == "parquet":
            # Verifies page checksums where the writer stored them (pyarrow's default does not).
            return pq.read_table(target, page_checksum_verification=True)
        if fmt == "csv":
            return pa_csv.read_csv(target)
        return pa_json.read_json(target)
    except MemoryError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        hint = {
            "parquet": "the file is corrupted, truncated or not Parquet",
            "csv": "check its quoting, delimiters and that every row has the same columns",
            "json": "each line must be one JSON object",
        }[fmt]
        raise InvalidInput(
            f"cannot read {shown!r} as {label}: {_one_line(str(exc))} ({hint})",
            path=shown,
            format=fmt,
        ) from None


def _read_folder(folder: Path, fmt: DataFormat, shown: str) -> pa.Table:
    file_format: pa_ds.FileFormat | str = fmt
    if fmt == "parquet":
        file_format = pa_ds.ParquetFileFormat(
            default_fragment_scan_options=pa_ds.ParquetFragmentScanOptions(
                page_checksum_verification=True
            )
        )
    dataset = pa_ds.dataset(folder, format=file_format)
    if not dataset.files:
        raise InvalidInput(
            f"folder {shown!r} holds no {_LABELS[fmt]} files; point at a file or a folder of "
            "Parquet files",
            path=shown,
        )
    return dataset.to_table()


def read_profile(path: str | os.PathLike[str]) -> DatasetProfile:
    """Read a profile saved as JSON (``DatasetProfile.to_dict`` output, as ``write_profile``)."""
    shown = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no profile file at {shown!r}", path=shown) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read profile file {shown!r}: {exc}", path=shown) from None
    except UnicodeDecodeError:
        text = ""  # binary, e.g. a Parquet file: reported as not JSON below
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"profile file {shown!r} is not JSON: {exc}; save one with "
            "'mloop data profile DATA --output PROFILE.json'",
            path=shown,
        ) from None
    if not isinstance(body, dict) or not {"rows", "columns"} <= body.keys():
        raise InvalidInput(
            f"{shown!r} is not a saved profile (expected an object with 'rows' and 'columns')",
            path=shown,
        )
    try:
        return DatasetProfile.from_dict(body)
    except InvalidInput as exc:
        raise InvalidInput(f"{shown!r}: {exc.message}", path=shown) from None


def write_profile(profile: DatasetProfile, path: str | os.PathLike[str]) -> None:
    """Save a profile as JSON, to be read back with ``read_profile`` (e.g. as a drift reference)."""
    text = json.dumps(profile.to_dict(), indent=2, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")
