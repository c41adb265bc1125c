"""Reading data files: every format, a folder of Parquet files, and every way a file can be bad."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop.data import io, profile
from mloop.data.io import format_of, read_profile, read_table, write_profile, write_table
from mloop.errors import InvalidInput, NotFound

TABLE = pa.table({"x": [1.5, 2.5, None, 4.0], "city": ["a", "b", "a", None], "n": [1, 2, 3, 4]})


def _parquet(path: Path, table: pa.Table = TABLE, **options: object) -> Path:
    pq.write_table(table, path, **options)
    return path


def test_reads_parquet_csv_and_json_lines(tmp_path: Path) -> None:
    _parquet(tmp_path / "d.parquet")
    _parquet(tmp_path / "d.pq")
    (tmp_path / "d.csv").write_text("x,city,n\n1.5,a,1\n2.5,b,2\n,a,3\n4.0,,4\n", encoding="utf-8")
    lines = [
        '{"x": 1.5, "city": "a", "n": 1}',
        '{"x": 2.5, "city": "b", "n": 2}',
        '{"x": null, "city": "a", "n": 3}',
        '{"x": 4.0, "city": null, "n": 4}',
    ]
    for name in ("d.json", "d.jsonl"):
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in ("d.parquet", "d.pq", "d.csv", "d.json", "d.jsonl"):
        table = read_table(tmp_path / name)
        assert table.column_names == ["x", "city", "n"], name
        assert table.num_rows == 4, name
        assert table.column("x").null_count == 1, name
        assert table.column("n").to_pylist() == [1, 2, 3, 4], name


def test_format_override_beats_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    assert read_table(path, format="csv").to_pylist() == [{"a": 1, "b": 2}]
    assert format_of(tmp_path / "x.PARQUET") == "parquet"
    with pytest.raises(InvalidInput, match="unknown data format 'xls'"):
        format_of(path, "xls")


def test_a_folder_of_parquet_files_reads_as_one_dataset(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    _parquet(folder / "part-0.parquet")
    _parquet(folder / "part-1.parquet")
    assert read_table(folder).num_rows == 8


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "none").mkdir()
    with pytest.raises(InvalidInput, match="holds no Parquet files"):
        read_table(tmp_path / "none")


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no data file at '.*missing\.parquet'"):
        read_table(tmp_path / "missing.parquet")


def test_unknown_extension_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(InvalidInput, match=r"data\.xlsx.*extension '\.xlsx'.*--format"):
        read_table(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InvalidInput, match=r"'.*empty\.csv' is empty"):
        read_table(path)


def test_truncated_parquet_is_invalid_input(tmp_path: Path) -> None:
    good = _parquet(tmp_path / "good.parquet").read_bytes()
    bad = tmp_path / "truncated.parquet"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(
        InvalidInput, match=r"cannot read '.*truncated\.parquet' as Parquet"
    ) as info:
        read_table(bad)
    assert "\n" not in info.value.message


def test_garbage_in_the_parquet_footer_is_invalid_input(tmp_path: Path) -> None:
    data = bytearray(_parquet(tmp_path / "good.parquet").read_bytes())
    (footer_length,) = struct.unpack("<i", data[-8:-4])
    start = len(data) - 8 - footer_length
    data[start : len(data) - 8] = bytes((i * 37 + 11) % 256 for i in range(footer_length))
    bad = tmp_path / "garbage.parquet"
    bad.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match=r"cannot read '.*garbage\.parquet' as Parquet"):
        read_table(bad)


def test_garbage_in_a_checksummed_parquet_page_is_invalid_input(tmp_path: Path) -> None:
    data = bytearray(_parquet(tmp_path / "ck.parquet", write_page_checksum=True).read_bytes())
    data[4:40] = b"\xff" * 36  # inside the first data page, after the leading magic
    bad = tmp_path / "page.parquet"
    bad.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match=r"'.*page\.parquet' as Parquet"):
        read_table(bad)


def test_random_bytes_named_parquet_are_invalid_input(tmp_path: Path) -> None:
    bad = tmp_path / "random.parquet"
    bad.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InvalidInput, match="as Parquet"):
        read_table(bad)


def test_malformed_csv_is_invalid_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"cannot read '.*bad\.csv' as CSV: .*got 3"):
        read_table(bad)


def test_malformed_json_lines_is_invalid_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"'.*bad\.jsonl' as JSON lines"):
        read_table(bad)


def test_profile_round_trips_through_a_file(tmp_path: Path) -> None:
    prof = profile(TABLE)
    write_profile(prof, tmp_path / "p.json")
    assert read_profile(tmp_path / "p.json") == prof


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON"),
        ('{"a": 1}\n', "is not a saved profile"),
        ('{"rows": 1, "columns": [{"nope": 1}]}', "not a dataset profile"),
    ],
)
def test_bad_profile_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        read_profile(path)


def test_missing_profile_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no profile file"):
        read_profile(tmp_path / "nope.json")


def _middle_of_a_data_page(path: Path, column: int = 0) -> int:
    """The offset of a byte in the middle of the data pages of a column's first chunk."""
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(column)
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    end = start + chunk.total_compressed_size
    return int((chunk.data_page_offset + end) // 2)


def _no_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_table_stores_zstd_statistics_checksums_and_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(io, "ROW_GROUP_ROWS", 3)
    path = tmp_path / "t.parquet"
    write_table(TABLE, path)
    assert read_table(path).equals(TABLE)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 2  # 4 rows in groups of 3
    for group in range(meta.num_row_groups):
        for column in range(meta.num_columns):
            chunk = meta.row_group(group).column(column)
            assert chunk.compression == "ZSTD"
            assert chunk.is_stats_set
            assert chunk.statistics.has_null_count
    city = meta.row_group(0).column(1).statistics
    assert (city.min, city.max, city.null_count) == ("a", "b", 0)
    assert _no_leftovers(tmp_path) == []


def test_write_table_takes_a_data_frame_and_keeps_nan(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, None], "s": ["a", None, "c"]})
    write_table(frame, tmp_path / "f.parquet")
    back = read_table(tmp_path / "f.parquet")
    assert back.column_names == ["x", "s"]
    assert back.column("s").null_count == 1
    assert np.isnan(back.column("x").to_numpy(zero_copy_only=False)).sum() == 2


def test_default_row_group_size_is_documented() -> None:
    assert io.ROW_GROUP_ROWS == 128 * 1024
    assert "ROW_GROUP_ROWS" in (io.__doc__ or "")


def test_flipped_bytes_in_a_data_page_fail_the_checksum(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    table = pa.table({"x": rng.normal(size=5_000), "n": np.arange(5_000)})
    path = tmp_path / "good.parquet"
    write_table(table, path)
    for column in (0, 1):
        data = bytearray(path.read_bytes())
        middle = _middle_of_a_data_page(path, column)
        data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
        bad = tmp_path / f"flipped-{column}.parquet"
        bad.write_bytes(bytes(data))
        with pytest.raises(InvalidInput, match=r"'.*flipped-\d\.parquet' as Parquet") as info:
            read_table(bad)
        assert "fails its checksum" in info.value.message
        assert "corrupted" in info.value.message
        assert "\n" not in info.value.message
        assert info.value.details["path"] == str(bad)


def test_a_corrupted_file_in_a_folder_fails_the_checksum(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    table = pa.table({"n": np.arange(2_000)})
    write_table(table, folder / "part-0.parquet")
    write_table(table, folder / "part-1.parquet")
    assert read_table(folder).num_rows == 4_000
    data = bytearray((folder / "part-1.parquet").read_bytes())
    middle = _middle_of_a_data_page(folder / "part-1.parquet")
    data[middle] ^= 0xFF
    (folder / "part-1.parquet").write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match=r"cannot read '.*parts' as Parquet.*checksum"):
        read_table(folder)


def test_a_truncated_written_file_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "whole.parquet"
    write_table(pa.table({"n": np.arange(1_000)}), path)
    data = path.read_bytes()
    for size in (len(data) - 1, len(data) // 2, 10):
        cut = tmp_path / "cut.parquet"
        cut.write_bytes(data[:size])
        with pytest.raises(InvalidInput, match=r"cannot read '.*cut\.parquet' as Parquet"):
            read_table(cut)


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    interval = pa.table({"x": pa.array([pa.MonthDayNano([1, 2, 3])], pa.month_day_nano_interval())})
    with pytest.raises(InvalidInput, match=r"cannot write '.*t\.parquet' as Parquet"):
        write_table(interval, path)
    assert list(tmp_path.iterdir()) == []
    write_table(TABLE, path)
    before = path.read_bytes()
    with pytest.raises(InvalidInput):
        write_table(interval, path)
    assert path.read_bytes() == before  # the old file is untouched
    assert _no_leftovers(tmp_path) == []


def test_write_table_refuses_bad_targets_and_data(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no folder .*; create it first"):
        write_table(TABLE, tmp_path / "missing" / "t.parquet")
    (tmp_path / "dir.parquet").mkdir()
    with pytest.raises(InvalidInput, match="is a folder"):
        write_table(TABLE, tmp_path / "dir.parquet")
    with pytest.raises(InvalidInput, match="unsupported data"):
        write_table({"x": [1]}, tmp_path / "t.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.parquet"]
