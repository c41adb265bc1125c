"""Daily store-item demand with a known change point: the regression scenario of ``mloop demo``.

Each row asks for one store's sales of one item on one day: the store, the item, the day of the
week, the shelf price, whether the item is on promotion (and its discount), the day's
temperature and rainfall, and whether a competitor runs a promotion. The target
``units_sold`` becomes known when the day has closed and the tills have reported
(``label_delay_ms``).

At ``change_at_ms`` a heatwave sets in and a competitor opens nearby. With ``drift=True`` the
inputs move: hotter, drier days, prices up a fifth (cost inflation), far more and deeper
promotions, competitor promotions most days. Shoppers change too (with or without ``drift``):
more price-sensitive, less moved by promotions, more drawn away by the competitor; and drinks and
ice cream sell far beyond anything seen at the temperatures before, which tree models cannot
extrapolate to.

Stationary before the change at a window of whole weeks (``stores * items * 7`` rows; 2,100 with
the defaults): the day of the week is the one input that follows the calendar. Vectorised NumPy,
deterministic: the stores and items depend on ``seed`` alone, the days on ``seed`` and
``start_ms``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from mloop.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CATEGORICAL",
    "FEATURES",
    "ITEM_CATEGORIES",
    "LABEL_DELAY",
    "TARGET",
    "TIMESTAMP",
    "generate",
]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: The time the forecast was asked for (milliseconds since the epoch, UTC); rows sorted by it.
TIMESTAMP = "timestamp_ms"
#: The target: units sold that day.
TARGET = "units_sold"
#: Milliseconds after ``timestamp_ms`` at which ``units_sold`` becomes known.
LABEL_DELAY = "label_delay_ms"
#: The model's inputs, in order.
FEATURES = (
    "store",
    "item",
    "day_of_week",
    "price",
    "promo",
    "discount_pct",
    "temperature_c",
    "precipitation_mm",
    "competitor_promo",
)
#: The string-valued features.
CATEGORICAL = ("store", "item")
ITEM_CATEGORIES = ("beverages", "ice_cream", "bakery", "dairy", "produce", "soup", "snacks")

Array = NDArray[Any]

# Per item category: median shelf price, sales per store-day, price elasticity, change in
# log-demand per +10 °C, extra log-demand per +5 °C above 25 °C, rain sensitivity.
_PRICE = np.array([1.8, 4.5, 2.2, 1.6, 2.5, 2.8, 2.0])
_VOLUME = np.array([30.0, 8.0, 25.0, 28.0, 22.0, 10.0, 18.0])
_ELASTICITY = np.array([1.4, 1.8, 0.8, 0.9, 1.1, 1.2, 1.6])
_WARM = np.array([0.35, 0.6, 0.0, 0.05, 0.1, -0.5, 0.05])
_HEAT = np.array([0.45, 0.7, -0.05, 0.0, 0.0, -0.3, 0.1])
_RAIN = np.array([-0.05, -0.15, 0.0, 0.0, -0.05, 0.1, 0.05])
# Weekday factors, Monday first.
_WEEKDAY = np.array([0.85, 0.9, 0.92, 0.97, 1.1, 1.3, 1.0])


def _check(days: int, start_ms: int, stores: int, items: int, lag: int) -> None:
    for name, value, low in (("days", days, 0), ("stores", stores, 1), ("items", items, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise InvalidInput(f"{name} must be a whole number >= {low}, got {value!r}")
    if isinstance(start_ms, bool) or not isinstance(start_ms, int | np.integer):
        raise InvalidInput(
            f"start_ms must be an int (milliseconds since the epoch), got {start_ms!r}"
        )
    if lag <= 0:
        raise InvalidInput(f"reporting_lag_median_ms must be positive, got {lag!r}")


def _strings(values: list[str], codes: Array) -> pd.Series:
    import pandas as pd
    import pyarrow as pa

    return pd.Series(pa.array(values).take(pa.array(codes)), dtype="str")


def generate(
    days: int,
    *,
    start_ms: int,
    seed: int = 0,
    change_at_ms: int | None = None,
    drift: bool = True,
    stores: int = 10,
    items: int = 30,
    reporting_lag_median_ms: int = 3 * HOUR_MS,
    first_id: int = 0,
) -> pd.DataFrame:
    """``days * stores * items`` forecast requests for the days from ``start_ms`` (one row per
    store, item and day), with the change at ``change_at_ms`` (never when None)."""
    import pandas as pd

    _check(days, start_ms, stores, items, reporting_lag_median_ms)
    shape = np.random.default_rng([seed, 0xD3A])
    size = shape.lognormal(0.0, 0.35, stores)
    climate = shape.normal(0.0, 2.0, stores)
    price_index = shape.uniform(0.95, 1.05, stores)
    category = np.arange(items) % len(ITEM_CATEGORIES)
    base_price = np.round(_PRICE[category] * shape.lognormal(0.0, 0.3, items), 2)
    volume = _VOLUME[category] * shape.lognormal(0.0, 0.4, items)
    elasticity = _ELASTICITY[category] * shape.uniform(0.85, 1.15, items)

    rng = np.random.default_rng(
        [seed, 0xDA7, int(start_ms) & 0xFFFFFFFF, int(start_ms) >> 32 & 0xFFFFFFFF]
    )
    per_day = stores * items
    n = days * per_day
    day = np.repeat(np.arange(days, dtype=np.int64), per_day)
    store = np.tile(np.repeat(np.arange(stores), items), days)
    item = np.tile(np.arange(items), days * stores)
    day_ms = start_ms + day * DAY_MS
    # Asked at some moment of the day; the sales are known after closing plus a reporting lag.
    ts = day_ms + rng.integers(0, DAY_MS, n)
    after = np.zeros(n, dtype=bool) if change_at_ms is None else day_ms >= change_at_ms
    moved = after & drift
    weekday = ((day_ms // DAY_MS + 3) % 7).astype(np.int64)  # 1970-01-01 was a Thursday

    # Weather: each store's climate and its own weather each day. No regional spell lasting
    # days: a week's mean temperature would then move more than the drift threshold allows.
    temperature = 14.0 + climate[store] + rng.normal(0.0, 4.0, n) + 9.0 * moved
    rains = rng.random(n) < np.where(moved, 0.15, 0.45)
    rain = np.where(rains, rng.lognormal(np.log(4.0), 0.8, n), 0.0)

    price = np.round(base_price[item] * price_index[store] * np.where(moved, 1.2, 1.0), 2)
    promo = rng.random(n) < np.where(moved, 0.35, 0.1)
    deep = rng.integers(0, 5, n) * 5.0
    discount = np.where(promo, np.where(moved, 20.0, 10.0) + deep, 0.0)
    competitor = rng.random(n) < np.where(moved, 0.45, 0.1)

    # Shoppers: the same rules before and after, with the change's sensitivities after it.
    cat = category[item]
    sensitivity = np.where(after, 1.5, 1.0) * elasticity[item]
    paid = price * (1.0 - discount / 100.0)
    log_rate = (
        np.log(volume[item] * size[store] * _WEEKDAY[weekday])
        - sensitivity * np.log(paid / base_price[item])
        + np.where(promo, np.where(after, 0.1, 0.3), 0.0)
        - np.where(competitor, np.where(after, 0.3, 0.1), 0.0)
        + _WARM[cat] * (temperature - 15.0) / 10.0
        + _HEAT[cat] * np.maximum(temperature - 25.0, 0.0) / 5.0
        + _RAIN[cat] * np.minimum(rain, 20.0) / 10.0
    )
    # Gamma-Poisson (negative binomial) noise: over-dispersed counts, as sales are.
    rate = np.exp(log_rate) * rng.gamma(8.0, 1.0 / 8.0, n)
    units = rng.poisson(rate)
    lag = rng.lognormal(np.log(reporting_lag_median_ms), 0.5, n).astype(np.int64)
    delay = day_ms + DAY_MS + lag - ts

    order = np.argsort(ts, kind="stable")
    store_names = [f"S{i + 1:02d}" for i in range(stores)]
    item_names = [f"I{i + 1:03d}" for i in range(items)]
    categories = [ITEM_CATEGORIES[c] for c in category]
    frame = pd.DataFrame(
        {
            TIMESTAMP: ts[order],
            "day_ms": day_ms[order],
            "store": _strings(store_names, store[order]),
            "item": _strings(item_names, item[order]),
            "item_category": _strings(categories, item[order]),
            "day_of_week": weekday[order],
            "price": price[order],
            "promo": promo[order],
            "discount_pct": discount[order],
            "temperature_c": np.round(temperature[order], 1),
            "precipitation_mm": np.round(rain[order], 1),
            "competitor_promo": competitor[order],
            TARGET: units[order].astype(np.int64),
            LABEL_DELAY: delay[order].astype(np.int64),
        }
    )
    frame.insert(0, "forecast_id", np.arange(first_id, first_id + n, dtype=np.int64))
    return frame
