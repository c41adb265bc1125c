"""Card transactions with fraud whose pattern changes at a known time: the fraud scenario of
``mloop demo``.

Each row is one card payment: its amount, merchant category, merchant country, channel, local
hour, whether the paying device is new, and the cardholder's history (payments in the last 24 h,
mean amount over 30 days, distance from home, card age), with ``is_fraud`` and the delay after
which that label becomes known (``label_delay_ms``: chargebacks and confirmations come late).

Before ``change_at_ms`` fraud is stolen card details used **abroad, at night, for large
purchases** (electronics, travel, cash). From ``change_at_ms`` it is mostly **card testing**:
bursts of small online payments in digital goods, entertainment and gambling from new devices,
aimed at new cards. With ``drift=True`` the population moves at the same moment (a digital-wallet
partner brings young, online-first customers): more online payments in digital categories,
smaller amounts, more new devices, busier and newer cards. That shift is visible in the
features, so a drift monitor sees it before any label arrives; with ``drift=False`` only the
fraud changes (concept drift, visible only through labels).

Columns: ``transaction_id`` (``first_id`` onwards) and ``customer_id`` (identifiers, not model
inputs), ``timestamp_ms``, the ``FEATURES``, ``is_fraud`` and ``label_delay_ms``. Fraud is about
1.2% of payments before the change and 2.4% after; labels come after a log-normal delay with
median ``label_delay_median_ms`` (fraud in half that: cardholders report it). ``hour`` is the
local hour at the point of sale; the network spans time zones, so its distribution does not
follow the UTC clock and a window of any length is stationary before the change. At the default
2,000 payments an hour, a one-hour monitoring window holds about 2,000 rows.

Everything is vectorised NumPy and deterministic: the customer base depends on ``seed`` alone,
the payments on ``seed`` and ``start_ms``, so successive windows generated with the same seed
share customers but not payments.
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
    "CATEGORIES",
    "CHANNELS",
    "COUNTRIES",
    "FEATURES",
    "LABEL_DELAY",
    "TARGET",
    "TIMESTAMP",
    "generate",
    "labelled_by",
]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: The time column (milliseconds since the epoch, UTC); rows are sorted by it.
TIMESTAMP = "timestamp_ms"
#: The label: 1 for a fraudulent payment.
TARGET = "is_fraud"
#: Milliseconds after ``timestamp_ms`` at which the row's label becomes known.
LABEL_DELAY = "label_delay_ms"
#: The model's inputs, in order.
FEATURES = (
    "amount",
    "merchant_category",
    "country",
    "is_foreign",
    "channel",
    "hour",
    "device_new",
    "txn_count_24h",
    "mean_amount_30d",
    "distance_from_home_km",
    "card_age_days",
)
#: The string-valued features.
CATEGORICAL = ("merchant_category", "country", "channel")

CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "retail",
    "electronics",
    "travel",
    "health",
    "entertainment",
    "digital_goods",
    "gambling",
    "cash_withdrawal",
    "transport",
)
CHANNELS = ("pos", "online", "atm")
#: Cardholders live in the first ``len(_HOME_P)``; the rest are merchant countries only.
COUNTRIES = ("GB", "FR", "DE", "ES", "IT", "NL", "IE", "US", "PT", "CH", "TH", "BR", "AE", "MX")

Array = NDArray[Any]

# Per category: median amount, log-normal sigma, share of payments made online.
_MEDIAN = np.array([42.0, 28.0, 55.0, 65.0, 220.0, 310.0, 48.0, 30.0, 12.0, 40.0, 100.0, 3.5])
_SIGMA = np.array([0.7, 0.6, 0.4, 0.8, 0.9, 0.9, 0.7, 0.7, 0.8, 0.9, 0.6, 0.6])
_ONLINE = np.array([0.12, 0.25, 0.0, 0.35, 0.55, 0.7, 0.2, 0.5, 1.0, 0.85, 0.0, 0.3])
_CASH = CATEGORIES.index("cash_withdrawal")
_TRAVEL = CATEGORIES.index("travel")
# Category mix of established cardholders and of the wallet segment that arrives at the change.
_CLASSIC_MIX = np.array([0.22, 0.15, 0.09, 0.14, 0.04, 0.03, 0.05, 0.06, 0.05, 0.02, 0.08, 0.07])
_WALLET_MIX = np.array([0.09, 0.16, 0.02, 0.09, 0.04, 0.02, 0.03, 0.13, 0.28, 0.06, 0.02, 0.06])
# The two fraud patterns' category mixes.
_FOREIGN_NIGHT_MIX = np.array([0, 0, 0, 0.2, 0.35, 0.15, 0, 0, 0, 0.1, 0.2, 0])
_CARD_TESTING_MIX = np.array([0, 0, 0, 0, 0, 0, 0, 0.25, 0.5, 0.25, 0, 0])
_HOME_P = np.array([0.45, 0.15, 0.15, 0.1, 0.08, 0.04, 0.03])
# Where cardholders pay abroad: nearby countries mostly; fraud abroad: anywhere.
_ABROAD_P = np.array(
    [0.14, 0.14, 0.1, 0.14, 0.1, 0.06, 0.04, 0.1, 0.08, 0.04, 0.02, 0.01, 0.02, 0.01]
)
_FAR = np.array([c in {"US", "TH", "BR", "AE", "MX"} for c in COUNTRIES])
# Local hour of legitimate payments (the network spans time zones, so it does not follow UTC).
_DAY_HOURS = np.array([0.8, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3.5, 4.5, 5, 5.5, 6, 5.8, 5.2, 5])
_DAY_HOURS = np.r_[_DAY_HOURS, [5.2, 5.8, 6.0, 5.5, 4.5, 3.5, 2.5, 1.5]]
_WALLET_HOURS = _DAY_HOURS * np.r_[np.full(18, 0.8), np.full(6, 1.6)]
_NIGHT_HOURS = np.array([6, 7, 7, 6, 5, 3] + [0.5] * 16 + [2, 4], dtype=float)

# Fraud rates (share of all payments) before and after the change, by pattern.
_RATE_BEFORE = {"foreign_night": 0.012, "card_testing": 0.0}
_RATE_AFTER = {"foreign_night": 0.004, "card_testing": 0.02}
#: Share of frauds that look like ordinary payments (no model can catch those).
_CAMOUFLAGED = 0.1
#: Share of payments made by wallet-segment customers after the change (with ``drift=True``).
_WALLET_SHARE = 0.55


def _p(weights: Array) -> Array:
    return np.asarray(weights, dtype=float) / float(np.sum(weights))


def _choice(rng: np.random.Generator, p: Array, size: int) -> Array:
    """Indices drawn with probabilities ``p`` (inverse CDF: much faster than ``rng.choice``)."""
    cdf = np.cumsum(_p(p))
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(size), side="right").astype(np.int64)


def _choice_by(rng: np.random.Generator, p: Array, wallet: Array, wallet_p: Array) -> Array:
    """Indices drawn with ``p`` for established customers and ``wallet_p`` for the others."""
    out = _choice(rng, p, len(wallet))
    k = int(wallet.sum())
    if k:
        out[wallet] = _choice(rng, wallet_p, k)
    return out


def _lognormal(
    rng: np.random.Generator, median: Array | float, sigma: Array | float, size: int
) -> Array:
    return np.asarray(median) * np.exp(np.asarray(sigma) * rng.standard_normal(size))


def _strings(values: tuple[str, ...], codes: Array) -> pd.Series:
    """A string column from codes into ``values`` (through Arrow: no Python string per row)."""
    import pandas as pd
    import pyarrow as pa

    return pd.Series(pa.array(values).take(pa.array(codes)), dtype="str")


class _Customers:
    """The customer base: established cardholders, then the wallet segment (ids after them)."""

    def __init__(self, seed: int, count: int, start_ms: int, change_at_ms: int | None) -> None:
        rng = np.random.default_rng([seed, 0x0C057])
        self.classic = count
        wallet = count // 2
        total = count + wallet
        is_wallet = np.arange(total) >= count
        self.home = _choice(rng, _HOME_P, total)
        self.spend = np.where(
            is_wallet, _lognormal(rng, 28.0, 0.5, total), _lognormal(rng, 55.0, 0.5, total)
        )
        self.daily = np.where(
            is_wallet, _lognormal(rng, 5.0, 0.6, total), _lognormal(rng, 2.5, 0.8, total)
        )
        # Cards of established customers are months to years old at start_ms; wallet cards are
        # issued in the weeks before the change.
        age_days = rng.uniform(20.0, 2500.0, total)
        issued = float(start_ms) - age_days * DAY_MS
        if change_at_ms is not None:
            fresh = float(change_at_ms) - rng.uniform(0.0, 30.0, total) * DAY_MS
            issued = np.where(is_wallet, fresh, issued)
        self.issued_ms = issued
        self.wallet = wallet


def _rows_of(rng: np.random.Generator, n: int, wallet: Array, customers: _Customers) -> Array:
    classic_ids = rng.integers(0, customers.classic, n)
    wallet_ids = customers.classic + rng.integers(0, max(customers.wallet, 1), n)
    return np.where(wallet, wallet_ids, classic_ids)


def _check(n: int, start_ms: int, rate_per_hour: float, customers: int, delay: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise InvalidInput(f"n must be a whole number >= 0, got {n!r}")
    if isinstance(start_ms, bool) or not isinstance(start_ms, int | np.integer):
        raise InvalidInput(
            f"start_ms must be an int (milliseconds since the epoch), got {start_ms!r}"
        )
    if not np.isfinite(rate_per_hour) or rate_per_hour <= 0:
        raise InvalidInput(f"rate_per_hour must be a positive number, got {rate_per_hour!r}")
    if customers < 10:
        raise InvalidInput(f"customers must be at least 10, got {customers!r}")
    if delay <= 0:
        raise InvalidInput(f"label_delay_median_ms must be positive, got {delay!r}")


def generate(
    n: int,
    *,
    start_ms: int,
    seed: int = 0,
    change_at_ms: int | None = None,
    drift: bool = True,
    rate_per_hour: float = 2000.0,
    customers: int = 50_000,
    label_delay_median_ms: int = 2 * HOUR_MS,
    first_id: int = 0,
) -> pd.DataFrame:
    """``n`` card payments from ``start_ms`` (a Poisson stream of ``rate_per_hour``), with the
    fraud pattern changing at ``change_at_ms`` (never when None: a stationary replay)."""
    import pandas as pd

    _check(n, start_ms, rate_per_hour, customers, label_delay_median_ms)
    people = _Customers(seed, customers, start_ms, change_at_ms)
    rng = np.random.default_rng(
        [seed, 0x7A5, int(start_ms) & 0xFFFFFFFF, int(start_ms) >> 32 & 0xFFFFFFFF]
    )

    gaps = rng.exponential(HOUR_MS / rate_per_hour, n)
    ts = start_ms + np.floor(np.cumsum(gaps)).astype(np.int64)
    after = np.zeros(n, dtype=bool) if change_at_ms is None else ts >= change_at_ms
    wallet = after & (rng.random(n) < _WALLET_SHARE) if drift else np.zeros(n, dtype=bool)
    customer = _rows_of(rng, n, wallet, people)

    # Legitimate behaviour for every row; fraud rows are overwritten below.
    category = _choice_by(rng, _CLASSIC_MIX, wallet, _WALLET_MIX)
    online_p = np.where(wallet, 1.0 - (1.0 - _ONLINE[category]) * 0.5, _ONLINE[category])
    online_p[category == _CASH] = 0.0
    online = rng.random(n) < online_p
    channel = np.where(category == _CASH, 2, np.where(online, 1, 0))
    level = people.spend[customer]
    amount = _lognormal(rng, _MEDIAN[category] * np.sqrt(level / 55.0), _SIGMA[category], n)
    foreign_p = 0.03 + 0.35 * (category == _TRAVEL) + 0.05 * online
    foreign = rng.random(n) < np.where(wallet, foreign_p * 0.5, foreign_p)
    hour = _choice_by(rng, _DAY_HOURS, wallet, _WALLET_HOURS)
    device_p = np.where(wallet, np.where(online, 0.25, 0.1), np.where(online, 0.06, 0.01))
    device_new = rng.random(n) < device_p
    count_24h = rng.poisson(people.daily[customer])
    home_km = np.where(online, _lognormal(rng, 12.0, 1.2, n), _lognormal(rng, 6.0, 1.0, n))

    # Fraud: which rows, which pattern.
    before_p = np.array([_RATE_BEFORE["foreign_night"], _RATE_BEFORE["card_testing"]])
    after_p = np.array([_RATE_AFTER["foreign_night"], _RATE_AFTER["card_testing"]])
    u = rng.random(n)
    rates = np.where(after[:, None], after_p[None, :], before_p[None, :])
    night = u < rates[:, 0]
    testing = (u >= rates[:, 0]) & (u < rates[:, 0] + rates[:, 1])
    is_fraud = night | testing
    camouflaged = rng.random(n) < _CAMOUFLAGED
    # Card testers aim at new cards: the wallet segment when it exists.
    target_wallet = testing & (rng.random(n) < (0.7 if drift else 0.0))
    customer = np.where(target_wallet, _rows_of(rng, n, target_wallet, people), customer)
    level = people.spend[customer]

    m = night & ~camouflaged
    k = int(m.sum())
    category[m] = _choice(rng, _FOREIGN_NIGHT_MIX, k)
    channel[m] = np.where(category[m] == _CASH, 2, np.where(rng.random(k) < 0.15, 1, 0))
    amount[m] = _lognormal(rng, 650.0, 0.6, k)
    foreign[m] = rng.random(k) < 0.8
    hour[m] = _choice(rng, _NIGHT_HOURS, k)
    device_new[m] = rng.random(k) < np.where(channel[m] == 1, 0.6, 0.05)
    count_24h[m] = rng.poisson(people.daily[customer[m]])
    home_km[m] = _lognormal(rng, 60.0, 1.0, k)

    m = testing & ~camouflaged
    k = int(m.sum())
    category[m] = _choice(rng, _CARD_TESTING_MIX, k)
    channel[m] = 1
    amount[m] = _lognormal(rng, 3.0, 0.6, k)
    foreign[m] = rng.random(k) < 0.1
    hour[m] = rng.integers(0, 24, k)
    device_new[m] = rng.random(k) < 0.75
    count_24h[m] = rng.poisson(people.daily[customer[m]] + _lognormal(rng, 10.0, 0.5, k))
    home_km[m] = _lognormal(rng, 40.0, 1.3, k)

    # Where the payment happened: home, or a country abroad (never the cardholder's own).
    home = people.home[customer]
    abroad = _choice(rng, _ABROAD_P, n)
    abroad = np.where(abroad == home, (abroad + 1) % len(COUNTRIES), abroad)
    country = np.where(foreign, abroad, home)
    far = _FAR[country]
    abroad_km = np.where(far, _lognormal(rng, 6500.0, 0.35, n), _lognormal(rng, 900.0, 0.5, n))
    home_km = np.where(foreign, abroad_km, home_km)
    cash = channel == 2
    amount = np.where(cash, np.maximum(np.round(amount / 20.0), 1.0) * 20.0, np.round(amount, 2))
    amount = np.maximum(amount, 0.5)
    mean_30d = np.round(level * _lognormal(rng, 1.0, 0.1, n), 2)
    card_age = np.maximum((ts - people.issued_ms[customer]) / DAY_MS, 0.0).astype(np.int64)

    delay_median = np.where(is_fraud, 0.5, 1.0) * label_delay_median_ms
    delay = np.maximum(_lognormal(rng, delay_median, 0.7, n), 60_000.0).astype(np.int64)

    return pd.DataFrame(
        {
            "transaction_id": np.arange(first_id, first_id + n, dtype=np.int64),
            "customer_id": customer.astype(np.int64),
            TIMESTAMP: ts,
            "amount": amount,
            "merchant_category": _strings(CATEGORIES, category),
            "country": _strings(COUNTRIES, country),
            "is_foreign": foreign,
            "channel": _strings(CHANNELS, channel),
            "hour": hour.astype(np.int64),
            "device_new": device_new,
            "txn_count_24h": count_24h.astype(np.int64),
            "mean_amount_30d": mean_30d,
            "distance_from_home_km": np.round(home_km, 1),
            "card_age_days": card_age,
            TARGET: is_fraud.astype(np.int64),
            LABEL_DELAY: delay,
        }
    )


def labelled_by(frame: pd.DataFrame, at_ms: int) -> pd.DataFrame:
    """The rows of ``frame`` whose label is known at ``at_ms`` (time + delay <= at_ms)."""
    return frame[frame[TIMESTAMP] + frame[LABEL_DELAY] <= at_ms]
