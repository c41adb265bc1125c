"""mloop's own small protocol: ``POST /predict`` with JSON records and ``POST /feedback``.

``/predict`` takes a list of records ``[{"col": value, ...}, ...]``, or ``{"records": [...]}``,
or one record ``{"col": value, ...}``; a list of rows (lists) is read by position. In the
object forms a top-level ``"key"`` (a string or a whole number) is the sticky routing key of a
canary split, not a column (unless the model's signature names a column ``key``: then, in the
one-record form, it is that column). The answer is ``{"request_id", "model_version",
"predictions": [...], "probabilities": [[...]]}`` (probabilities only when the model has them).

``/feedback`` takes ``{"request_id": "...", "label": value}`` (for a request of several rows,
``label`` is a list with one label per row) or ``{"feedback": [{...}, ...]}`` for several.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mloop.errors import InvalidInput
from mloop.models.signature import Signature
from mloop.serving.protocols.common import (
    ParsedInput,
    dumps,
    input_from_records,
    input_from_rows,
    json_type,
    loads,
    to_json_values,
)

__all__ = [
    "MAX_REQUEST_ID_LENGTH",
    "Feedback",
    "PredictRequest",
    "encode_predict_response",
    "parse_feedback",
    "parse_predict",
]

MAX_REQUEST_ID_LENGTH = 128
"""The longest request id ``/feedback`` accepts."""


@dataclass
class PredictRequest:
    """A parsed ``/predict`` body: its rows and its sticky routing key, if any."""

    inputs: ParsedInput
    key: str | None = None


@dataclass
class Feedback:
    """Ground-truth labels for the rows of an earlier request, in row order."""

    request_id: str
    labels: list[Any]


def parse_predict(body: bytes, signature: Signature | None) -> PredictRequest:
    """Read a ``/predict`` body: records, ``{"records": [...]}`` or one record; optional key."""
    payload = loads(body)
    if isinstance(payload, list):
        return PredictRequest(inputs=_rows(payload, signature, "body"))
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"the body is a JSON {json_type(payload)}; send a list of records, "
            '{"records": [...]} or one record object',
            field="body",
        )
    names = set(signature.column_names) if signature is not None else set()
    if "records" in payload and "records" not in names:
        unknown = [k for k in payload if k not in ("records", "key")]
        if unknown:
            raise InvalidInput(
                f"the body has unknown key(s) {', '.join(repr(k) for k in unknown)} next to "
                "'records'; only 'key' may go with it",
                field=unknown[0],
            )
        records = payload["records"]
        if not isinstance(records, list):
            raise InvalidInput(
                f"'records' is a JSON {json_type(records)}; send a list of records",
                field="records",
            )
        return PredictRequest(
            inputs=_rows(records, signature, "records"), key=_key(payload.get("key"))
        )
    record = dict(payload)
    key = None
    if "key" in record and "key" not in names:
        key = _key(record.pop("key"))
    if not record:
        raise InvalidInput("the body has no columns; send a record", field="body")
    for name, value in record.items():
        if isinstance(value, dict | list):
            raise InvalidInput(
                f"column '{name}' of the record is a JSON {json_type(value)}; a record holds "
                'single values (send several rows as a list or {"records": [...]})',
                field=name,
            )
    return PredictRequest(inputs=input_from_records([record], signature, "record"), key=key)


def _rows(rows: list[Any], signature: Signature | None, what: str) -> ParsedInput:
    if rows and isinstance(rows[0], dict):
        return input_from_records(rows, signature, what)
    return input_from_rows(rows, signature, what)


def _key(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidInput(
        f"'key' (the sticky routing key) must be a string or a whole number, got a JSON "
        f"{json_type(value)}",
        field="key",
    )


def encode_predict_response(
    request_id: str, model_version: int, predictions: Any, probabilities: Any = None
) -> bytes:
    """The ``/predict`` answer; ``probabilities`` is left out when None."""
    body: dict[str, Any] = {
        "request_id": request_id,
        "model_version": model_version,
        "predictions": to_json_values(predictions),
    }
    if probabilities is not None:
        body["probabilities"] = to_json_values(probabilities)
    return dumps(body)


def parse_feedback(body: bytes) -> list[Feedback]:
    """Read a ``/feedback`` body: one ``{request_id, label}`` or ``{"feedback": [...]}``."""
    payload = loads(body)
    if not isinstance(payload, dict):
        raise InvalidInput(
            f'the body is a JSON {json_type(payload)}; send {{"request_id": ..., "label": '
            '...} or {"feedback": [...]}',
            field="body",
        )
    if "feedback" in payload:
        if len(payload) != 1:
            other = next(k for k in payload if k != "feedback")
            raise InvalidInput(
                f"the body has '{other}' next to 'feedback'; put every item in the list",
                field=other,
            )
        items = payload["feedback"]
        if not isinstance(items, list) or not items:
            raise InvalidInput(
                "'feedback' must be a non-empty list of {request_id, label} objects",
                field="feedback",
            )
        return [_feedback_item(item, f"feedback[{i}]") for i, item in enumerate(items)]
    return [_feedback_item(payload, "body")]


def _feedback_item(item: Any, where: str) -> Feedback:
    if not isinstance(item, dict):
        raise InvalidInput(
            f'\'{where}\' is a JSON {json_type(item)}; send {{"request_id": ..., "label": ...}}',
            field=where,
        )
    unknown = [k for k in item if k not in ("request_id", "label")]
    if unknown:
        raise InvalidInput(
            f"'{where}' has unknown key(s) {', '.join(repr(k) for k in unknown)}; use "
            "request_id and label",
            field=unknown[0],
        )
    request_id = item.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInput(
            f"'{where}.request_id' must be the request id a prediction answered with (a "
            "non-empty string)",
            field="request_id",
        )
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidInput(
            f"'{where}.request_id' is {len(request_id)} characters long; request ids have at "
            f"most {MAX_REQUEST_ID_LENGTH}",
            field="request_id",
        )
    if "label" not in item:
        raise InvalidInput(
            f"'{where}' has no 'label'; send the true value (a list of one per row for a "
            "request of several rows)",
            field="label",
        )
    label = item["label"]
    labels = label if isinstance(label, list) else [label]
    if not labels:
        raise InvalidInput(
            f"'{where}.label' is an empty list; send one label per row", field="label"
        )
    return Feedback(request_id=request_id, labels=labels)
