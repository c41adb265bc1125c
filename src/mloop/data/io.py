"""Data files: reading Parquet (a file or a folder of files), CSV and JSON lines; writing
Parquet the way mloop stores it; reading and writing profiles.

The format comes from the extension (``.parquet``/``.pq``, ``.csv``, ``.json``/``.jsonl``/
``.ndjson``, read as newline-delimited JSON) unless given. Every failure is one
:class:`~mloop.errors.InvalidInput` (or :class:`~mloop.errors.NotFound` for a missing path) whose
message names the file, so that no PyArrow traceback reaches a user.

``write_table`` writes Parquet with zstd compression, column statistics, a CRC-32 checksum on
every page and row groups of ``ROW_GROUP_ROWS`` rows; ``read_table`` verifies page checksums
wherever a file carries them, so a corrupted page is an error naming the file, never wrong data.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Literal, cast, get_args

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_ds
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from mloop.data.frames import as_table
from mloop.data.profile import DatasetProfile
from mloop.errors import InvalidInput, NotFound

__all__ = [
    "COMPRESSION",
    "EXTENSIONS",
    "FORMATS",
    "ROW_GROUP_ROWS",
    "DataFormat",
    "format_of",
    "read_profile",
    "read_table",
    "write_profile",
    "write_table",
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
#: Rows per row group in the Parquet files ``write_table`` writes. A reader holds at most one row
#: group of a column in memory, so this bounds streaming reads (100 float columns: ~100 MB),
#: while staying large enough for good compression and for statistics to skip whole groups.
ROW_GROUP_ROWS = 128 * 1024
#: The codec ``write_table`` compresses Parquet pages with (at Arrow's default level).
COMPRESSION = "zstd"


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
        if fmt == "parquet" and "checksum" in str(exc).lower():
            raise InvalidInput(
                f"cannot read {shown!r} as Parquet: a page fails its checksum "
                f"({_one_line(str(exc))}); the file is corrupted — restore it from its source",
                path=shown,
                format=fmt,
            ) from None
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


def write_table(table: object, path: str | os.PathLike[str]) -> None:
    """Write a table (Arrow table or DataFrame) as Parquet the way mloop stores data.

    zstd compression, statistics on every column, a page checksum on every page (which
    ``read_table`` verifies) and row groups of ``ROW_GROUP_ROWS`` rows. The file appears at
    ``path`` whole or not at all: it is written beside it under a temporary name, then renamed.
    """
    shown = os.fspath(path)
    data = as_table(table)
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(f"{shown!r} is a folder; give the path of a file to write", path=shown)
    if not target.parent.is_dir():
        raise NotFound(
            f"no folder {os.fspath(target.parent)!r} to write {shown!r} into; create it first",
            path=shown,
        )
    # Beside the target, so the rename is atomic; created by the writer, so the umask applies.
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    try:
        pq.write_table(
            data,
            temporary,
            row_group_size=ROW_GROUP_ROWS,
            compression=COMPRESSION,
            write_statistics=True,
            write_page_checksum=True,
        )
        os.replace(temporary, target)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(
            f"cannot write {shown!r} as Parquet: {_one_line(str(exc))}", path=shown
        ) from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


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
