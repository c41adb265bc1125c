"""The base class for custom Python models saved with the ``pyfunc`` flavor."""

from __future__ import annotations

from typing import Any

__all__ = ["PythonModel"]


class PythonModel:
    """Subclass and implement ``predict`` (and optionally ``predict_proba``) to package any code.

    The ``pyfunc`` flavor pickles the instance (with cloudpickle when installed), so loading it
    runs code: ``load_model(..., trusted=True)`` is required.
    """

    def predict(self, data: Any) -> Any:
        """Return predictions for coerced input (a DataFrame or an ndarray)."""
        raise NotImplementedError("implement predict(data) in your PythonModel subclass")
