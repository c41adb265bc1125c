"""Reading the prediction log: its segments by hour partition, predictions joined to labels.

A deployment's log is a set of Parquet segments in the content-addressed artifact store,
referenced as artifacts of owner kind ``"deployment"`` under paths such as
``predictions/date=2026-11-23/hour=14/1763906400123-4242-000017.parquet`` (``<first ts in ms,
13 digits>-<worker>-<sequence, 6 digits>``). Every row of a segment lies in its hour (UTC), so a
time window reads only the partitions it overlaps. Feedback segments (``feedback/…``) are
partitioned by the time of the prediction they label, so the labels of a window live in the
same hours as its predictions.

Windows are half-open, ``start_ms <= ts < end_ms``, in epoch milliseconds; either end may be
left open (``None``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mloop.errors import IntegrityError, InvalidInput, InvalidState

if TYPE_CHECKING:
    from mloop.tracking.client import TrackingClient

__all__ = [
    "HOUR_MS",
    "KINDS",
    "OWNER_KIND",
    "Segment",
    "check_deployment",
    "concat_segments",
    "list_segments",
    "open_segment",
    "partition_prefix",
    "read_columns",
    "read_feedback",
    "read_predictions",
    "read_segment",
    "segment_path",
]

HOUR_MS = 3_600_000
#: The artifact owner kind under which a deployment's segments are referenced.
OWNER_KIND = "deployment"
#: The two kinds of segment: predictions and the labels sent later through feedback.
KINDS = ("predictions", "feedback")
#: Schema metadata key holding the class labels of the ``proba`` columns, as JSON.
CLASSES_KEY = b"mloop.classes"
TS_TYPE = pa.timestamp("ms", tz="UTC")
_LAST_TS = 10**13  # 13-digit millisecond timestamps (until the year 2286)
_PATH = re.compile(
    r"(?P<kind>predictions|feedback)/date=(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})/"
    r"hour=(?P<h>\d{2})/(?P<first>\d{13})-(?P<worker>.+)-(?P<seq>\d{6})\.parquet"
)
_READ_THREADS = 8
#: Above this many hours a window is listed one day (or the whole kind) at a time.
_HOURS_LISTED_ONE_BY_ONE = 6
_DAYS_LISTED_ONE_BY_ONE = 31


@dataclass(frozen=True)
class Segment:
    """One Parquet file of a deployment's log: its path, its blob and the hour it holds."""

    kind: str
    path: str
    digest: str
    size: int
    hour_ms: int
    first_ts_ms: int
    worker: str
    seq: int
    created_at: int


def check_deployment(name: object) -> str:
    """Return ``name`` if it can name a deployment's log (the rule of
    :func:`mloop.store.deployments.check_deployment_name`), else raise InvalidInput."""
    from mloop.store.deployments import check_deployment_name

    try:
        return check_deployment_name(name)
    except InvalidInput as exc:
        raise type(exc)(exc.message, field="deployment") from None


def _check_ms(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidInput(
            f"{field} must be epoch milliseconds (an int) or None, got {type(value).__name__}",
            field=field,
        )
    if not 0 <= int(value) < _LAST_TS:
        raise InvalidInput(
            f"{field}={value} is not epoch milliseconds between 0 and {_LAST_TS - 1}",
            field=field,
        )
    return int(value)


def check_window(start_ms: object, end_ms: object) -> tuple[int | None, int | None]:
    """The window as ints (each may be None); InvalidInput if malformed or start > end."""
    start, end = _check_ms(start_ms, "start_ms"), _check_ms(end_ms, "end_ms")
    if start is not None and end is not None and start > end:
        raise InvalidInput(
            f"start_ms={start} is after end_ms={end}; a window is start_ms <= ts < end_ms",
            field="start_ms",
        )
    return start, end


def partition_prefix(kind: str, ts_ms: int) -> str:
    """The partition folder holding time ``ts_ms``: ``<kind>/date=YYYY-MM-DD/hour=HH/``."""
    moment = datetime.fromtimestamp((ts_ms - ts_ms % HOUR_MS) / 1000, tz=UTC)
    return f"{kind}/date={moment:%Y-%m-%d}/hour={moment:%H}/"


def segment_path(kind: str, first_ts_ms: int, worker: str, seq: int) -> str:
    """The artifact path of a segment whose earliest row is at ``first_ts_ms``."""
    return f"{partition_prefix(kind, first_ts_ms)}{first_ts_ms:013d}-{worker}-{seq:06d}.parquet"


def _segment(entry: Any) -> Segment | None:
    found = _PATH.fullmatch(entry.path)
    if found is None:
        return None
    hour = datetime(int(found["y"]), int(found["m"]), int(found["d"]), int(found["h"]), tzinfo=UTC)
    return Segment(
        kind=found["kind"],
        path=entry.path,
        digest=entry.digest,
        size=entry.size,
        hour_ms=int(hour.timestamp()) * 1000,
        first_ts_ms=int(found["first"]),
        worker=found["worker"],
        seq=int(found["seq"]),
        created_at=entry.created_at,
    )


def _prefixes(kind: str, start: int | None, end: int | None) -> list[str]:
    if start is None or end is None or end <= start:
        return [f"{kind}/"]
    first, last = start - start % HOUR_MS, (end - 1) - (end - 1) % HOUR_MS
    hours = (last - first) // HOUR_MS + 1
    if hours <= _HOURS_LISTED_ONE_BY_ONE:
        return [partition_prefix(kind, first + i * HOUR_MS) for i in range(hours)]
    day = 24 * HOUR_MS
    if (last - first) // day + 1 <= _DAYS_LISTED_ONE_BY_ONE:
        days = range(first - first % day, last + 1, day)
        return sorted({partition_prefix(kind, ts).split("hour=")[0] for ts in days})
    return [f"{kind}/"]


def _client(client: TrackingClient | None) -> TrackingClient:
    from mloop.tracking.fluent import client_or_default

    return client_or_default(client)


def list_segments(
    deployment: str,
    kind: str = "predictions",
    start_ms: int | None = None,
    end_ms: int | None = None,
    *,
    client: TrackingClient | None = None,
) -> list[Segment]:
    """Segments of a deployment's log whose hour overlaps the window, by time then path.

    Cheap: one metadata query per hour (short windows) or per day; no blob is read.
    """
    check_deployment(deployment)
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", field="kind")
    start, end = check_window(start_ms, end_ms)
    if start is not None and end is not None and start == end:
        return []
    store = _client(client).store
    found: list[Segment] = []
    for prefix in _prefixes(kind, start, end):
        for entry in store.list_artifacts(OWNER_KIND, deployment, prefix):
            segment = _segment(entry)
            if segment is None or segment.kind != kind:
                continue
            if start is not None and segment.hour_ms + HOUR_MS <= start:
                continue
            if end is not None and segment.hour_ms >= end:
                continue
            found.append(segment)
    found.sort(key=lambda s: (s.hour_ms, s.first_ts_ms, s.path))
    return found


def _unreadable(segment: Segment, exc: Exception) -> IntegrityError:
    return IntegrityError(
        f"prediction log segment {segment.path} (blob {segment.digest[:12]}…) cannot be "
        f"read as Parquet: {' '.join(str(exc).split())}",
        path=segment.path,
    )


def open_segment(
    client: TrackingClient, segment: Segment, *, read_dictionary: Sequence[str] = ()
) -> pq.ParquetFile:
    """One segment as a Parquet file (its pages verified when read; ``read_dictionary``
    columns read dictionary-encoded), its blob verified against its digest."""
    data = client.artifacts.get_bytes(segment.digest)
    try:
        return pq.ParquetFile(
            pa.BufferReader(data), page_checksum_verification=True,
            read_dictionary=list(read_dictionary) or None,
        )  # fmt: skip
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _unreadable(segment, exc) from None


def read_columns(
    file: pq.ParquetFile, segment: Segment, columns: Sequence[str] | None = None
) -> pa.Table:
    """The rows of an opened segment (only ``columns`` when given; ``inputs.x`` reads one
    field of the inputs); IntegrityError if a page is damaged."""
    try:
        return file.read(columns=list(columns) if columns is not None else None)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _unreadable(segment, exc) from None


def read_segment(
    client: TrackingClient, segment: Segment, columns: Sequence[str] | None = None
) -> pa.Table:
    """One segment's rows (only ``columns`` when given), verified against its digest."""
    return read_columns(open_segment(client, segment), segment, columns)


def _read_all(
    client: TrackingClient, segments: Sequence[Segment], columns: Sequence[str] | None = None
) -> list[pa.Table]:
    if len(segments) <= 1:
        return [read_segment(client, s, columns) for s in segments]
    # Object stores answer each GET in tens of ms: fetch several at once.
    with ThreadPoolExecutor(min(_READ_THREADS, len(segments))) as pool:
        return list(pool.map(lambda s: read_segment(client, s, columns), segments))


def _in_window(table: pa.Table, start: int | None, end: int | None) -> pa.Table:
    if (start is None and end is None) or table.num_rows == 0:
        return table
    bounds = pc.min_max(table["ts"].cast(pa.int64()))
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if (start is None or low >= start) and (end is None or high < end):
        return table  # wholly inside: no copy
    ts = table["ts"]
    mask = None
    if start is not None:
        mask = pc.greater_equal(ts, pa.scalar(start, TS_TYPE))
    if end is not None:
        below = pc.less(ts, pa.scalar(end, TS_TYPE))
        mask = below if mask is None else pc.and_(mask, below)
    return table.filter(mask)


def _as_text(table: pa.Table, names: list[str]) -> pa.Table:
    for name in names:
        if name in table.column_names and not pa.types.is_nested(table.schema.field(name).type):
            index = table.column_names.index(name)
            table = table.set_column(index, name, pc.cast(table[name], pa.string()))
    return table


def concat_segments(tables: Sequence[pa.Table], what: str) -> pa.Table:
    """Concatenate segments, unifying their schemas (new struct fields, wider numbers); a
    scalar column typed differently across segments becomes text. InvalidState otherwise."""
    if len(tables) == 1:
        return tables[0]
    plain = [t.replace_schema_metadata(None) for t in tables]
    try:
        return pa.concat_tables(plain, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    # A column typed differently across segments (labels sent as numbers, then as text):
    # scalar columns become text; nested ones cannot be reconciled.
    names = {name for t in plain for name in t.column_names}
    clashing = [
        name
        for name in names
        if len({t.schema.field(name).type for t in plain if name in t.column_names}) > 1
    ]
    fixed = [_as_text(table, clashing) for table in plain]
    try:
        return pa.concat_tables(fixed, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidState(
            f"the {what} in this window have incompatible types in columns "
            f"{', '.join(sorted(clashing))} ({' '.join(str(exc).split())}); read a narrower "
            "window, e.g. one served model version at a time",
            columns=sorted(clashing),
        ) from None


def _classes(table: pa.Table) -> dict[str, Any]:
    """Class labels per model version, from a segment's metadata."""
    meta = table.schema.metadata or {}
    if CLASSES_KEY not in meta or table.num_rows == 0:
        return {}
    classes = json.loads(meta[CLASSES_KEY])
    return {str(v): classes for v in pc.unique(table["model_version"]).to_pylist()}


def empty_predictions() -> pa.Table:
    """A predictions table with no rows (the columns every table has; no known inputs)."""
    return pa.table(
        {
            "request_id": pa.array([], pa.string()),
            "row": pa.array([], pa.int32()),
            "ts": pa.array([], TS_TYPE),
            "model_version": pa.array([], pa.int32()),
            "role": pa.array([], pa.dictionary(pa.int32(), pa.string())),
            "latency_ms": pa.array([], pa.float32()),
            "inputs": pa.array([], pa.struct([])),
            "prediction": pa.array([], pa.null()),
            "proba": pa.array([], pa.list_(pa.float64())),
        }
    )


def empty_feedback() -> pa.Table:
    """A feedback table with no rows."""
    return pa.table(
        {
            "request_id": pa.array([], pa.string()),
            "row": pa.array([], pa.int32()),
            "ts": pa.array([], TS_TYPE),
            "label_ts": pa.array([], TS_TYPE),
            "label": pa.array([], pa.null()),
        }
    )


def latest_labels(feedback: pa.Table) -> pa.Table:
    """One row per (request_id, row): the label sent last (by label_ts, then by log order)."""
    n = feedback.num_rows
    if n == 0:
        return feedback
    ordered = feedback.append_column("__order", pa.array(np.arange(n, dtype=np.int64)))
    indices = pc.sort_indices(
        ordered,
        sort_keys=[
            ("request_id", "ascending"),
            ("row", "ascending"),
            ("label_ts", "ascending"),
            ("__order", "ascending"),
        ],
    )
    ordered = ordered.take(indices).drop_columns(["__order"])
    ids, rows = ordered["request_id"], ordered["row"]
    changes = pc.or_(pc.not_equal(ids[:-1], ids[1:]), pc.not_equal(rows[:-1], rows[1:]))
    last = pa.concat_arrays([*changes.chunks, pa.array([True])]) if n > 1 else pa.array([True])
    return ordered.filter(last)


def _join_labels(table: pa.Table, labels: pa.Table) -> pa.Table:
    n = table.num_rows
    if labels.num_rows == 0 or n == 0:
        label: pa.Array | pa.ChunkedArray = pa.nulls(n, labels.schema.field("label").type)
        label_ts: pa.Array | pa.ChunkedArray = pa.nulls(n, TS_TYPE)
    else:
        # Arrow's hash join carries no struct or dictionary columns: join the keys with row
        # numbers on both sides, then take each row's label by its number (null: none).
        keys = pa.table(
            {
                "request_id": table["request_id"],
                "row": table["row"],
                "__i": pa.array(np.arange(n, dtype=np.int64)),
            }
        )
        numbered = pa.table(
            {
                "request_id": labels["request_id"],
                "row": labels["row"],
                "__j": pa.array(np.arange(labels.num_rows, dtype=np.int64)),
            }
        )
        joined = keys.join(numbered, keys=["request_id", "row"], join_type="inner")
        where = np.full(n, -1, dtype=np.int64)
        where[joined["__i"].to_numpy()] = joined["__j"].to_numpy()
        picks = pa.array(where, mask=where < 0)
        label, label_ts = labels["label"].take(picks), labels["label_ts"].take(picks)
    return table.append_column("label", label).append_column("label_ts", label_ts)


def read_feedback(
    deployment: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    latest: bool = True,
    client: TrackingClient | None = None,
) -> pa.Table:
    """Labels of the predictions made in the window (``ts`` is the prediction's time).

    Columns: request_id, row, ts, label_ts (when the label arrived), label. With ``latest``
    (the default) only the last label of each (request_id, row) is kept.
    """
    tracking = _client(client)
    start, end = check_window(start_ms, end_ms)
    segments = list_segments(deployment, "feedback", start, end, client=tracking)
    tables = [_in_window(t, start, end) for t in _read_all(tracking, segments)]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return empty_feedback()
    table = concat_segments(tables, "labels")
    return latest_labels(table) if latest else table


def read_predictions(
    deployment: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    with_labels: bool = True,
    client: TrackingClient | None = None,
) -> pa.Table:
    """Logged predictions with ``start_ms <= ts < end_ms``, ordered by time (stable).

    Reads only the hour partitions the window overlaps. With ``with_labels`` the latest label
    of each (request_id, row) is joined as ``label`` and ``label_ts`` (null when none came).
    The class labels of ``proba`` per model version are in the schema metadata
    ``mloop.classes`` (JSON). A window with no predictions gives a table with no rows.
    """
    tracking = _client(client)
    start, end = check_window(start_ms, end_ms)
    segments = list_segments(deployment, "predictions", start, end, client=tracking)
    classes: dict[str, Any] = {}
    tables = []
    for segment_table in _read_all(tracking, segments):
        rows = _in_window(segment_table, start, end)
        if rows.num_rows:
            classes.update(_classes(rows))
            tables.append(rows)
    if not tables:
        table = empty_predictions()
    else:
        table = concat_segments(tables, "predictions")
        del tables
        # A stable sort by time keeps each request's rows in order; segments of one worker
        # usually come sorted already, and then nothing is copied.
        ts = table["ts"].cast(pa.int64()).to_numpy()
        if len(ts) > 1 and bool(np.any(ts[1:] < ts[:-1])):
            table = table.take(pa.array(np.argsort(ts, kind="stable")))
    if with_labels:
        labels = read_feedback(deployment, start_ms=start, end_ms=end, client=tracking)
        table = _join_labels(table, labels)
    if classes:
        table = table.replace_schema_metadata({CLASSES_KEY: json.dumps(classes).encode()})
    return table
