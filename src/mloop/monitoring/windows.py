"""Windows of a prediction log: fixed time windows or runs of consecutive rows.

``"1h"``, ``"15m"``, ``"30s"``, ``"1d"`` are time windows aligned to multiples of their length
since the epoch (an hour window starts on the hour, UTC). ``"10000 rows"`` windows hold
consecutive logged rows: each starts where the previous one ended and ends just after the
millisecond of its N-th row (rows logged in that same millisecond belong to it too), so a
window is a half-open time range ``[start_ms, end_ms)`` either way. Shadow rows (answers never
returned to a client) are not part of any window.

Reading is by column: only the fields of ``inputs`` and the outputs a check needs are decoded
from each Parquet segment (:func:`read_window`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mloop.errors import InvalidInput
from mloop.serving.predlog_read import (
    Segment,
    concat_segments,
    list_segments,
    open_segment,
    read_columns,
)

if TYPE_CHECKING:
    from mloop.tracking.client import TrackingClient

__all__ = ["Window", "WindowData", "WindowSpec", "parse_window", "read_window", "row_windows"]

_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_TIME = re.compile(r"\s*(\d+)\s*([smhd])\s*")
_ROWS = re.compile(r"\s*(\d+)\s*rows?\s*")
#: Shortest time window and fewest rows a window may have.
MIN_WINDOW_MS = 1_000
MIN_WINDOW_ROWS = 10
#: How long after its end a window counts as complete when run without end_ms (the log's
#: writers flush every few seconds); a rows window's end is just after its last row.
SETTLE_MS = 10_000


@dataclass(frozen=True)
class WindowSpec:
    """A parsed window: a length in milliseconds, or a number of rows."""

    text: str
    ms: int | None = None
    rows: int | None = None

    def align(self, ts_ms: int) -> int:
        """The start of the time window holding ``ts_ms``."""
        assert self.ms is not None
        return ts_ms - ts_ms % self.ms


@dataclass(frozen=True)
class Window:
    """One window of the log: ``start_ms <= ts < end_ms``."""

    start_ms: int
    end_ms: int


@dataclass
class WindowData:
    """The rows of one window that the checks read."""

    rows: int
    features: pa.Table  # one column per feature present in the log
    prediction: pa.ChunkedArray | None
    proba: pa.ChunkedArray | None  # list<float64>
    label: pa.ChunkedArray | None  # null where no label came
    model_versions: dict[int, int]

    @functools.cached_property
    def positive_proba(self) -> np.ndarray | None:
        """The last probability of each row (the positive class of a binary classifier); NaN
        where a row has none; None without probabilities."""
        if self.proba is None:
            return None
        sizes = pc.fill_null(pc.list_value_length(self.proba), 0).to_numpy().astype(np.int64)
        values = pc.list_flatten(self.proba).to_numpy(zero_copy_only=False)
        out = np.full(len(sizes), np.nan)
        has = sizes > 0
        out[has] = np.asarray(values, dtype=np.float64)[np.cumsum(sizes)[has] - 1]
        return out

    @property
    def labelled_rows(self) -> int:
        """Rows that have a label."""
        if self.label is None:
            return 0
        return self.rows - int(self.label.null_count)


def parse_window(window: object) -> WindowSpec:
    """Read ``"1h"``, ``"15m"``, ``"30s"``, ``"1d"`` or ``"N rows"``; InvalidInput otherwise."""
    if isinstance(window, str):
        found = _TIME.fullmatch(window)
        if found is not None:
            ms = int(found[1]) * _UNITS[found[2]]
            if ms >= MIN_WINDOW_MS:
                return WindowSpec(f"{int(found[1])}{found[2]}", ms=ms)
        found = _ROWS.fullmatch(window)
        if found is not None and int(found[1]) >= MIN_WINDOW_ROWS:
            return WindowSpec(f"{int(found[1])} rows", rows=int(found[1]))
    raise InvalidInput(
        f"window {window!r} is not a window: give a length such as '1h', '15m', '30s' or '1d' "
        f"(at least 1s), or a row count such as '10000 rows' (at least {MIN_WINDOW_ROWS})",
        field="window",
    )


def first_logged_ms(deployment: str, *, client: TrackingClient) -> int | None:
    """The time of the first logged prediction (from segment names; no blob read)."""
    segments = list_segments(deployment, "predictions", client=client)
    return min((s.first_ts_ms for s in segments), default=None)


def _open(client: TrackingClient, segment: Segment) -> pq.ParquetFile:
    # Request ids dictionary-encoded: the label join maps them to integers (see _labels).
    return open_segment(client, segment, read_dictionary=["request_id"])


def _mask(ts: pa.ChunkedArray, role: pa.ChunkedArray, start: int, end: int | None) -> Any:
    t = ts.cast(pa.int64())
    keep = pc.greater_equal(t, start)
    if end is not None:
        keep = pc.and_(keep, pc.less(t, end))
    served = pc.not_equal(role.cast(pa.string()), "shadow")
    return pc.and_(keep, pc.fill_null(served, True))


def row_windows(
    deployment: str,
    spec: WindowSpec,
    start_ms: int | None,
    clock_ms: int,
    *,
    limit: int,
    client: TrackingClient,
) -> list[Window]:
    """The complete rows windows from ``start_ms`` on (at most ``limit``; None: from the first
    logged row), reading only the ``ts`` and ``role`` columns of the segments."""
    assert spec.rows is not None
    since = 0 if start_ms is None else start_ms
    segments = list_segments(deployment, "predictions", since, None, client=client)
    stamps = []
    for segment in segments:
        table = read_columns(_open(client, segment), segment, ["ts", "role"])
        keep = _mask(table["ts"], table["role"], since, None)
        stamps.append(table["ts"].filter(keep).cast(pa.int64()).to_numpy())
    if not stamps:
        return []
    ts = np.sort(np.concatenate(stamps), kind="stable")
    windows: list[Window] = []
    # The first window (start_ms None) starts at the first row; later ones where the previous
    # one ended, so that windows stay contiguous.
    at, start = 0, int(ts[0]) if start_ms is None else start_ms
    while len(windows) < limit and at + spec.rows <= len(ts):
        end = int(ts[at + spec.rows - 1]) + 1
        after = int(np.searchsorted(ts, end, side="left"))
        if after >= len(ts) and end > clock_ms:
            break  # rows of that millisecond may still be on their way
        windows.append(Window(start, end))
        at, start = after, end
    return windows


def read_window(
    deployment: str,
    window: Window,
    *,
    features: Sequence[str],
    outputs: bool,
    labels: bool,
    client: TrackingClient,
) -> WindowData:
    """The served rows of a window: the ``features`` present in the log, and the prediction,
    positive-class probabilities and labels when asked. Only those columns are decoded."""
    segments = list_segments(
        deployment, "predictions", window.start_ms, window.end_ms, client=client
    )
    meta = ["ts", "role", "model_version"] + (["request_id", "row"] if labels else [])
    parts: list[pa.Table] = []
    feature_parts: list[pa.Table] = []
    for segment in segments:
        file = _open(client, segment)
        names = file.schema_arrow.names
        present = [c for c in [*meta, "prediction", "proba"] if c in names]
        if not outputs:
            present = [c for c in present if c not in ("prediction", "proba")]
        table = read_columns(file, segment, present)
        keep = _mask(table["ts"], table["role"], window.start_ms, window.end_ms)
        kept = pc.sum(keep).as_py() or 0
        if kept == 0:
            continue
        whole = kept == table.num_rows  # the usual case: no copy
        parts.append(table if whole else table.filter(keep))
        struct = file.schema_arrow.field("inputs").type if "inputs" in names else None
        fields = (
            [f for f in features if struct.get_field_index(f) >= 0]
            if isinstance(struct, pa.StructType)
            else []
        )
        if fields:
            struct_column = read_columns(file, segment, [f"inputs.{f}" for f in fields])["inputs"]
            inputs = pa.table({f: pc.struct_field(struct_column, f) for f in fields})
            feature_parts.append(inputs if whole else inputs.filter(keep))
    if not parts:
        return WindowData(0, pa.table({}), None, None, None, {})
    # Versions predicting (or fed) different types, e.g. ints then strings: those columns
    # are compared as text.
    table = concat_segments(parts, "predictions")
    feature_table = concat_segments(feature_parts, "inputs") if feature_parts else pa.table({})
    versions = pc.value_counts(table["model_version"]).to_pylist()
    model_versions = {int(v["values"]): int(v["counts"]) for v in versions}
    prediction = table["prediction"] if "prediction" in table.column_names else None
    proba = table["proba"] if "proba" in table.column_names else None
    label = _labels(deployment, window, table, client) if labels else None
    return WindowData(table.num_rows, feature_table, prediction, proba, label, model_versions)


def _codes(ids: pa.ChunkedArray, values: pa.Array) -> np.ndarray:
    """Each dictionary-encoded id as its position in ``values`` (-1: not there)."""
    out = []
    for part in ids.chunks:
        chunk = part if pa.types.is_dictionary(part.type) else part.dictionary_encode()
        remap = pc.index_in(chunk.dictionary, value_set=values)
        lookup = np.asarray(remap.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        indices = chunk.indices.fill_null(0).to_numpy(zero_copy_only=False)
        out.append(lookup[indices] if len(lookup) else np.full(len(chunk), -1, np.int64))
    return np.concatenate(out) if out else np.empty(0, np.int64)


def _feedback(deployment: str, window: Window, client: TrackingClient) -> pa.Table | None:
    segments = list_segments(deployment, "feedback", window.start_ms, window.end_ms, client=client)
    parts = []
    for segment in segments:
        file = _open(client, segment)
        table = read_columns(file, segment, ["request_id", "row", "ts", "label_ts", "label"])
        t = table["ts"].cast(pa.int64())
        keep = pc.and_(pc.greater_equal(t, window.start_ms), pc.less(t, window.end_ms))
        if pc.any(keep).as_py():
            parts.append(table.filter(keep))
    # Labels sent as numbers in one segment and as text in another are compared as text.
    return concat_segments(parts, "labels") if parts else None


def _labels(
    deployment: str, window: Window, table: pa.Table, client: TrackingClient
) -> pa.ChunkedArray | None:
    """The latest label of each row of ``table`` (null: none), joined by (request_id, row) on
    integer keys: request ids are read dictionary-encoded and mapped to one dictionary."""
    feedback = _feedback(deployment, window, client)
    if feedback is None:
        return None
    ids = table["request_id"]
    values = pc.unique(
        pa.chunked_array(
            [c.dictionary if pa.types.is_dictionary(c.type) else c for c in ids.chunks],
            type=pa.string(),
        )
    )
    rows = table["row"].to_numpy().astype(np.int64)
    label_rows = feedback["row"].to_numpy().astype(np.int64)
    width = int(max(rows.max(initial=0), label_rows.max(initial=0))) + 1
    mine = _codes(ids, values) * width + rows
    codes = _codes(feedback["request_id"], values)
    theirs = np.where(codes >= 0, codes * width + label_rows, -1)
    order = np.argsort(theirs, kind="stable")
    keys = theirs[order]
    if bool(np.any(keys[1:] == keys[:-1])):
        # Several labels for one row: the one that arrived last wins (then the one logged last).
        arrived = feedback["label_ts"].cast(pa.int64()).fill_null(0).to_numpy()
        order = np.lexsort((np.arange(len(theirs)), arrived, theirs))
        keys = theirs[order]
    last = np.r_[keys[1:] != keys[:-1], True] & (keys >= 0)
    keys, positions = keys[last], order[last]
    at = np.minimum(np.searchsorted(keys, mine), max(len(keys) - 1, 0))
    found = (keys[at] == mine) if len(keys) else np.zeros(len(mine), bool)
    picks = pa.array(np.where(found, positions[at] if len(keys) else 0, 0), mask=~found)
    return pa.chunked_array([feedback["label"].take(picks)])
