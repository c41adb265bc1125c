"""ONNX models run with onnxruntime (no code runs on load; custom-op libraries are never loaded).

With one model input, the coerced data is fed as one array (a column signature's columns side by
side, cast to the input's element type). With several inputs and a column signature, each
column feeds the input of the same name as an ``(n, 1)`` array. ``predict`` returns the first
output; ``predict_proba`` the second, when the model has one (as skl2onnx classifiers do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import InvalidInput, InvalidState
from mloop.models.flavors.base import Flavor, Predictor, require

__all__ = ["MODEL_FILE", "OnnxFlavor"]

MODEL_FILE = "model.onnx"

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(float16)": "float16",
}


class _OnnxPredictor(Predictor):
    def __init__(self, session: Any) -> None:
        self.raw = session
        self.inputs = list(session.get_inputs())
        self.outputs = list(session.get_outputs())

    def _feed(self, data: Any) -> dict[str, Any]:
        if len(self.inputs) == 1:
            spec = self.inputs[0]
            arr = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            dtype = _ORT_TYPES.get(spec.type)
            if dtype is None:
                raise InvalidInput(f"ONNX input '{spec.name}' has unsupported type {spec.type}")
            return {spec.name: arr.astype(dtype)}
        if not hasattr(data, "columns"):
            raise InvalidInput(
                f"this ONNX model takes {len(self.inputs)} inputs "
                f"({', '.join(i.name for i in self.inputs)}); send named columns"
            )
        feed = {}
        for spec in self.inputs:
            if spec.name not in data.columns:
                raise InvalidInput(
                    f"ONNX input '{spec.name}' has no column of that name", field=spec.name
                )
            dtype = _ORT_TYPES.get(spec.type, "float32")
            feed[spec.name] = data[spec.name].to_numpy().astype(dtype).reshape(-1, 1)
        return feed

    def predict(self, data: Any) -> Any:
        return self.raw.run([self.outputs[0].name], self._feed(data))[0]

    def has_proba(self) -> bool:
        return len(self.outputs) >= 2

    def predict_proba(self, data: Any) -> Any:
        if len(self.outputs) < 2:
            raise InvalidState("this ONNX model has one output, so no predict_proba")
        out = self.raw.run([self.outputs[1].name], self._feed(data))[0]
        if isinstance(out, list) and out and isinstance(out[0], dict):
            # A ZipMap output: one {label: probability} per row, labels in a stable order.
            labels = list(out[0])
            return np.asarray([[row[k] for k in labels] for row in out], dtype="float64")
        return np.asarray(out)


class OnnxFlavor(Flavor):
    """An ``onnx.ModelProto``, stored as its serialized bytes, run with onnxruntime."""

    name = "onnx"
    distribution = "onnx"

    def requirements(self) -> list[str]:
        from mloop.models.flavors.base import library_version

        return [
            f"onnx=={library_version('onnx')}",
            f"onnxruntime=={library_version('onnxruntime')}",
        ]

    def save(self, model: Any, folder: Path, *, trusted_types: list[str]) -> dict[str, Any]:
        onnx = require("onnx", "onnx", "saving an ONNX model")
        if isinstance(model, bytes | bytearray):
            model = onnx.load_model_from_string(bytes(model))
        if not isinstance(model, onnx.ModelProto):
            raise InvalidInput(
                f"the onnx flavor saves an onnx.ModelProto, not {type(model).__name__}",
                field="flavor",
            )
        try:
            onnx.checker.check_model(model)
        except Exception as exc:
            raise InvalidInput(f"the ONNX model does not pass onnx.checker: {exc}") from exc
        (folder / MODEL_FILE).write_bytes(model.SerializeToString())
        return {"model_file": MODEL_FILE}

    def load(self, folder: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        ort = require("onnxruntime", "onnx", "loading an ONNX model")
        path = folder / str(config.get("model_file", MODEL_FILE))
        try:
            session = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise InvalidInput(
                f"{path.name} could not be loaded by onnxruntime: {type(exc).__name__}: {exc}",
                field=path.name,
            ) from exc
        return _OnnxPredictor(session)

    def wrap(self, model: Any, config: dict[str, Any]) -> Predictor:
        ort = require("onnxruntime", "onnx", "running an ONNX model")
        data = model if isinstance(model, bytes | bytearray) else model.SerializeToString()
        return _OnnxPredictor(ort.InferenceSession(bytes(data), providers=["CPUExecutionProvider"]))
