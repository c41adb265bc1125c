"""Model flavors: one module per library's native format, imported only when used."""

from __future__ import annotations

from mloop.models.flavors.base import FLAVORS, Flavor, Predictor, detect_flavor, get_flavor

__all__ = ["FLAVORS", "Flavor", "Predictor", "detect_flavor", "get_flavor"]
