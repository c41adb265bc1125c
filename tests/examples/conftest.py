"""Shared windows of the scenarios: generated once per test session (generation is cheap, but
the drift and training tests reuse the same rows)."""

from __future__ import annotations

import pandas as pd
import pytest

from mloop.examples import demand, fraud

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: A Monday, midnight UTC (2023-11-13).
T0 = 1_699_833_600_000
#: The fraud timeline: 2,000 payments an hour, the change after 12 hours.
FRAUD_CHANGE = T0 + 12 * HOUR_MS
#: The demand timeline: 2,100 rows a week, the change after 8 weeks.
DEMAND_CHANGE = T0 + 8 * 7 * DAY_MS


def hour_window(frame: pd.DataFrame, hour: int) -> pd.DataFrame:
    """The rows of ``frame`` in the ``hour``-th hour from T0."""
    ts = frame[fraud.TIMESTAMP]
    return frame[(ts >= T0 + hour * HOUR_MS) & (ts < T0 + (hour + 1) * HOUR_MS)]


def week_window(frame: pd.DataFrame, week: int) -> pd.DataFrame:
    """The rows of ``frame`` for the days of the ``week``-th week from T0."""
    day = frame["day_ms"]
    return frame[(day >= T0 + week * 7 * DAY_MS) & (day < T0 + (week + 1) * 7 * DAY_MS)]


@pytest.fixture(scope="session")
def fraud_timeline() -> pd.DataFrame:
    """24 hours of payments with the change at hour 12."""
    return fraud.generate(48_000, start_ms=T0, seed=11, change_at_ms=FRAUD_CHANGE)


@pytest.fixture(scope="session")
def demand_timeline() -> pd.DataFrame:
    """16 weeks of store-item days with the change at week 8."""
    return demand.generate(16 * 7, start_ms=T0, seed=11, change_at_ms=DEMAND_CHANGE)
