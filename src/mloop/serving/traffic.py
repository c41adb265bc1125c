"""How a request is routed between a deployment's primary and canary versions.

With a key (the value of the deployment's sticky header, e.g. a customer id) the choice is a
stable hash: BLAKE2b of the key's UTF-8 bytes, read as a number in [0, 100), goes to the canary
when it is below the canary percentage. The same key always gets the same answer, in every
process and after restarts, and raising the percentage only moves keys from the primary to the
canary, never back. Without a key the choice is random.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Literal

from mloop.errors import InvalidInput

__all__ = ["Role", "Router", "bucket"]

#: Which version answers a request.
Role = Literal["primary", "canary"]

_SCALE = 100.0 / 2.0**64


def bucket(key: str) -> float:
    """Where ``key`` falls in [0, 100): a stable hash, the same in every process."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") * _SCALE


class Router:
    """Sends ``canary_percent`` of the traffic (0-100) to the canary, the rest to the primary."""

    __slots__ = ("_random", "canary_percent")

    def __init__(self, canary_percent: float, seed: int | None = None) -> None:
        if (
            not isinstance(canary_percent, int | float)
            or isinstance(canary_percent, bool)
            or not math.isfinite(canary_percent)
            or not 0 <= canary_percent <= 100
        ):
            raise InvalidInput(
                f"canary_percent is a share of the traffic from 0 to 100, got {canary_percent!r}",
                field="canary_percent",
            )
        self.canary_percent = float(canary_percent)
        self._random = random.Random(seed)

    def choose(self, key: str | None = None) -> Role:
        """Route one request: "canary" or "primary", sticky by ``key``'s hash, random without."""
        percent = self.canary_percent
        if percent <= 0.0:
            return "primary"
        if percent >= 100.0:
            return "canary"
        point = self._random.random() * 100.0 if key is None else bucket(key)
        return "canary" if point < percent else "primary"

    def __repr__(self) -> str:
        return f"Router(canary_percent={self.canary_percent:g})"
