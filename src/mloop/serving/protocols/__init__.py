"""Request and response protocols of the model server: MLflow, Open Inference, plain.

Each parser reads request bytes into a :class:`ParsedInput` (one request's rows), checking
structure only; the model's signature coercion checks value types once per batch.
"""

from mloop.serving.protocols.common import ParsedInput, concat_inputs
from mloop.serving.protocols.mlflow import encode_predictions, parse_invocations
from mloop.serving.protocols.oip import (
    InferRequest,
    RequestedOutput,
    encode_infer_response,
    model_metadata,
    model_outputs,
    parse_infer_request,
    server_metadata,
)
from mloop.serving.protocols.plain import (
    Feedback,
    PredictRequest,
    encode_predict_response,
    parse_feedback,
    parse_predict,
)

__all__ = [
    "Feedback",
    "InferRequest",
    "ParsedInput",
    "PredictRequest",
    "RequestedOutput",
    "concat_inputs",
    "encode_infer_response",
    "encode_predict_response",
    "encode_predictions",
    "model_metadata",
    "model_outputs",
    "parse_feedback",
    "parse_infer_request",
    "parse_invocations",
    "parse_predict",
    "server_metadata",
]
