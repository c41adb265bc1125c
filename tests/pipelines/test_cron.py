"""Cron schedules: parsing, next firing times (checked against a brute force), DST, errors."""

from __future__ import annotations

import calendar
import itertools
import random
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from mloop.errors import InvalidInput
from mloop.pipelines.cron import CronSchedule

MINUTE = timedelta(minutes=1)
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    """An aware datetime from ISO text with an explicit offset ('Z' for UTC)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def same_instant(a: datetime, b: datetime) -> bool:
    """Equality in UTC: Python ignores fold and offset when both sides share a tzinfo."""
    return a.astimezone(UTC) == b.astimezone(UTC) and a.utcoffset() == b.utcoffset()


def zone_of(schedule: CronSchedule) -> tzinfo:
    return UTC if schedule.tz == "UTC" else ZoneInfo(schedule.tz)


# -- the reference: step minute by minute through real time --------------------------------


def fields_match(s: CronSchedule, wall: datetime) -> bool:
    """Whether a naive local wall-clock minute matches the five fields (Vixie's day rule)."""
    dom_ok = wall.day in s.days_of_month
    dow_ok = wall.isoweekday() % 7 in s.days_of_week
    both = s.day_of_month_restricted and s.day_of_week_restricted
    day_ok = (dom_ok or dow_ok) if both else (dom_ok and dow_ok)
    return wall.minute in s.minutes and wall.hour in s.hours and wall.month in s.months and day_ok


def brute_firings(s: CronSchedule, after: datetime, until: datetime) -> list[datetime]:
    """Every firing in (after, until]: an instant fires when the local clock first reaches or
    passes a matching wall-clock minute (so a skipped minute fires at the end of its gap, and
    a repeated one only the first time)."""
    zone = zone_of(s)

    def wall(u: datetime) -> datetime:
        return u.astimezone(zone).replace(tzinfo=None)

    t = after.astimezone(UTC).replace(second=0, microsecond=0)
    seen = max(wall(t - k * MINUTE) for k in range(3 * 60))  # walls reached by `after`
    fired = []
    u = t + MINUTE
    end = until.astimezone(UTC)
    while u <= end:
        cur = wall(u)
        if cur > seen:
            w = seen + MINUTE
            while w <= cur:
                if fields_match(s, w):
                    fired.append(u.astimezone(zone))
                    break
                w += MINUTE
            seen = cur
        u += MINUTE
    return fired


def brute_next(s: CronSchedule, after: datetime, days: int) -> datetime | None:
    zone = zone_of(s)
    t = after.astimezone(UTC).replace(second=0, microsecond=0)
    seen = max((t - k * MINUTE).astimezone(zone).replace(tzinfo=None) for k in range(3 * 60))
    for k in range(1, days * 24 * 60 + 1):
        u = t + k * MINUTE
        cur = u.astimezone(zone).replace(tzinfo=None)
        if cur > seen:
            w = seen + MINUTE
            while w <= cur:
                if fields_match(s, w):
                    return u.astimezone(zone)
                w += MINUTE
            seen = cur
    return None


# -- known next firing times ----------------------------------------------------------------

KNOWN = [
    # (text, tz, after, expected next firing)
    ("* * * * *", "UTC", "2024-01-01T00:00:00Z", "2024-01-01T00:01Z"),
    ("* * * * *", "UTC", "2024-01-01T00:00:30Z", "2024-01-01T00:01Z"),
    ("* * * * *", "UTC", "2024-01-01T00:00:59.999999Z", "2024-01-01T00:01Z"),
    ("0 * * * *", "UTC", "2024-01-01T00:00Z", "2024-01-01T01:00Z"),
    ("*/15 * * * *", "UTC", "2024-01-01T10:07Z", "2024-01-01T10:15Z"),
    ("*/15 * * * *", "UTC", "2024-01-01T10:45Z", "2024-01-01T11:00Z"),
    ("10-50/10 * * * *", "UTC", "2024-01-01T10:50Z", "2024-01-01T11:10Z"),
    ("5/15 * * * *", "UTC", "2024-01-01T10:50Z", "2024-01-01T11:05Z"),
    ("0 0 * * *", "UTC", "2024-12-31T23:59Z", "2025-01-01T00:00Z"),
    ("59 23 31 12 *", "UTC", "2024-12-31T23:59Z", "2025-12-31T23:59Z"),
    ("0 0 1 * *", "UTC", "2024-01-31T12:00Z", "2024-02-01T00:00Z"),
    ("0 0 31 * *", "UTC", "2024-01-31T00:00Z", "2024-03-31T00:00Z"),
    ("0 0 30 * *", "UTC", "2024-01-30T00:00Z", "2024-03-30T00:00Z"),
    ("0 12 * jan,jul *", "UTC", "2024-02-01T00:00Z", "2024-07-01T12:00Z"),
    ("0 0 1 JAN *", "UTC", "2024-01-01T00:00Z", "2025-01-01T00:00Z"),
    # leap days: every fourth year, but not 2100
    ("0 0 29 2 *", "UTC", "2023-06-01T00:00Z", "2024-02-29T00:00Z"),
    ("0 0 29 2 *", "UTC", "2024-02-29T00:00Z", "2028-02-29T00:00Z"),
    ("0 0 29 2 *", "UTC", "2096-03-01T00:00Z", "2104-02-29T00:00Z"),
    ("0 0 28-29 2 *", "UTC", "2100-02-28T00:00Z", "2101-02-28T00:00Z"),
    # weekdays: 2024-01-01 is a Monday; 0, 7 and sun are all Sunday
    ("0 0 * * 0", "UTC", "2024-01-01T00:00Z", "2024-01-07T00:00Z"),
    ("0 0 * * 7", "UTC", "2024-01-01T00:00Z", "2024-01-07T00:00Z"),
    ("0 0 * * Sun", "UTC", "2024-01-01T00:00Z", "2024-01-07T00:00Z"),
    ("0 9 * * mon-fri", "UTC", "2024-01-05T09:00Z", "2024-01-08T09:00Z"),
    ("0 9 * * 6-7", "UTC", "2024-01-01T00:00Z", "2024-01-06T09:00Z"),
    ("*/15 9-17 * * mon-fri", "UTC", "2024-01-05T17:45Z", "2024-01-08T09:00Z"),
    # both day fields restricted: either matches (the 13th, or any Friday)
    ("0 0 13 * fri", "UTC", "2024-01-01T00:00Z", "2024-01-05T00:00Z"),
    ("0 0 13 * fri", "UTC", "2024-01-12T00:00Z", "2024-01-13T00:00Z"),
    ("0 0 1-31 * mon", "UTC", "2024-01-01T00:00Z", "2024-01-02T00:00Z"),
    ("0 0 30 2 mon", "UTC", "2024-01-01T00:00Z", "2024-02-05T00:00Z"),
    # one day field written '*' or '*/n': both must match (odd days that are Mondays)
    ("0 0 */2 * mon", "UTC", "2024-01-01T00:00Z", "2024-01-15T00:00Z"),
    ("0 0 1 * */3", "UTC", "2024-01-01T00:00Z", "2024-05-01T00:00Z"),
    # macros
    ("@hourly", "UTC", "2024-01-01T00:30Z", "2024-01-01T01:00Z"),
    ("@daily", "UTC", "2024-01-01T00:00Z", "2024-01-02T00:00Z"),
    ("@midnight", "UTC", "2024-01-01T23:59Z", "2024-01-02T00:00Z"),
    ("@weekly", "UTC", "2024-01-01T00:00Z", "2024-01-07T00:00Z"),
    ("@monthly", "UTC", "2024-01-15T00:00Z", "2024-02-01T00:00Z"),
    ("@yearly", "UTC", "2024-06-01T00:00Z", "2025-01-01T00:00Z"),
    ("@ANNUALLY", "UTC", "2024-06-01T00:00Z", "2025-01-01T00:00Z"),
    # the input's own offset does not matter, only the instant
    ("0 0 * * *", "UTC", "2024-01-01T04:00+05:00", "2024-01-01T00:00Z"),
    ("0 9 * * *", "Europe/Paris", "2024-01-01T08:59Z", "2024-01-02T09:00+01:00"),
    ("0 9 * * *", "Europe/Paris", "2024-01-01T07:59Z", "2024-01-01T09:00+01:00"),
    ("30 5 * * *", "Asia/Kolkata", "2024-01-01T00:00Z", "2024-01-02T05:30+05:30"),
    # Europe/Paris, spring: 2024-03-31 02:00 CET jumps to 03:00 CEST
    ("30 2 * * *", "Europe/Paris", "2024-03-30T12:00+01:00", "2024-03-31T03:00+02:00"),
    ("30 2 * * *", "Europe/Paris", "2024-03-31T03:00+02:00", "2024-04-01T02:30+02:00"),
    ("0 3 * * *", "Europe/Paris", "2024-03-30T12:00+01:00", "2024-03-31T03:00+02:00"),
    ("*/15 2 * * *", "Europe/Paris", "2024-03-31T01:50+01:00", "2024-03-31T03:00+02:00"),
    ("*/15 2 * * *", "Europe/Paris", "2024-03-31T03:00+02:00", "2024-04-01T02:00+02:00"),
    ("*/15 * * * *", "Europe/Paris", "2024-03-31T01:50+01:00", "2024-03-31T03:00+02:00"),
    ("*/15 * * * *", "Europe/Paris", "2024-03-31T03:00+02:00", "2024-03-31T03:15+02:00"),
    # Europe/Paris, autumn: 2024-10-27 03:00 CEST falls back to 02:00 CET
    ("30 2 * * *", "Europe/Paris", "2024-10-26T12:00+02:00", "2024-10-27T02:30+02:00"),
    ("30 2 * * *", "Europe/Paris", "2024-10-27T02:30+02:00", "2024-10-28T02:30+01:00"),
    ("*/30 * * * *", "Europe/Paris", "2024-10-27T02:30+02:00", "2024-10-27T03:00+01:00"),
    ("*/30 * * * *", "Europe/Paris", "2024-10-27T02:10+01:00", "2024-10-27T03:00+01:00"),
    ("*/30 * * * *", "Europe/Paris", "2024-10-27T02:10+02:00", "2024-10-27T02:30+02:00"),
    # America/New_York: 2024-03-10 02:00 EST -> 03:00 EDT; 2024-11-03 02:00 EDT -> 01:00 EST
    ("30 2 * * *", "America/New_York", "2024-03-09T12:00-05:00", "2024-03-10T03:00-04:00"),
    ("0 0 * * *", "America/New_York", "2024-03-09T12:00-05:00", "2024-03-10T00:00-05:00"),
    ("0 0 * * *", "America/New_York", "2024-03-10T00:00-05:00", "2024-03-11T00:00-04:00"),
    ("30 1 * * *", "America/New_York", "2024-11-02T12:00-04:00", "2024-11-03T01:30-04:00"),
    ("30 1 * * *", "America/New_York", "2024-11-03T01:30-04:00", "2024-11-04T01:30-05:00"),
    ("0 * * * *", "America/New_York", "2024-11-03T01:00-04:00", "2024-11-03T02:00-05:00"),
]


@pytest.mark.parametrize(("text", "tz", "after", "expected"), KNOWN)
def test_known_next_firing_times(text: str, tz: str, after: str, expected: str) -> None:
    schedule = CronSchedule.parse(text, tz=tz)
    got = schedule.next_after(at(after))
    assert same_instant(got, at(expected)), (text, tz, after, got.isoformat())
    assert got.tzinfo is zone_of(schedule)
    assert schedule.matches(got)
    brute = brute_next(schedule, at(after), days=40)
    if brute is not None:
        assert same_instant(brute, got)


def test_datetimes_in_the_schedules_own_zone_use_their_fold() -> None:
    schedule = CronSchedule.parse("*/30 * * * *", tz="Europe/Paris")
    first_pass = datetime(2024, 10, 27, 2, 10, tzinfo=PARIS, fold=0)
    second_pass = datetime(2024, 10, 27, 2, 10, tzinfo=PARIS, fold=1)
    assert same_instant(schedule.next_after(first_pass), at("2024-10-27T02:30+02:00"))
    assert same_instant(schedule.next_after(second_pass), at("2024-10-27T03:00+01:00"))


def test_iter_after_across_the_autumn_change_fires_each_wall_time_once() -> None:
    schedule = CronSchedule.parse("0,30 * * * *", tz="Europe/Paris")
    got = list(itertools.islice(schedule.iter_after(at("2024-10-27T01:00+02:00")), 5))
    expected = ["01:30+02:00", "02:00+02:00", "02:30+02:00", "03:00+01:00", "03:30+01:00"]
    assert [g.astimezone(UTC) for g in got] == [at(f"2024-10-27T{e}") for e in expected]
    # the wall-clock times increase too, so naive comparisons of the results are safe
    walls = [g.replace(tzinfo=None) for g in got]
    assert walls == sorted(walls)
    assert len(set(walls)) == len(walls)


def test_iter_after_across_the_spring_change_collapses_the_gap() -> None:
    schedule = CronSchedule.parse("*/20 * * * *", tz="America/New_York")
    got = list(itertools.islice(schedule.iter_after(at("2024-03-10T01:30-05:00")), 4))
    expected = ["01:40-05:00", "03:00-04:00", "03:20-04:00", "03:40-04:00"]
    assert [g.astimezone(UTC) for g in got] == [at(f"2024-03-10T{e}") for e in expected]


def test_a_zone_with_a_half_hour_shift() -> None:
    # Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30 in October,
    # 02:00 -> 01:30 in April.
    schedule = CronSchedule.parse("15 2 * * *", tz="Australia/Lord_Howe")
    spring = schedule.next_after(at("2024-10-06T00:00+10:30"))
    assert same_instant(spring, at("2024-10-06T02:30+11:00"))
    autumn = list(itertools.islice(schedule.iter_after(at("2024-04-06T12:00+11:00")), 2))
    assert same_instant(autumn[0], at("2024-04-07T02:15+10:30"))
    assert same_instant(autumn[1], at("2024-04-08T02:15+10:30"))
    repeated = CronSchedule.parse("45 1 * * *", tz="Australia/Lord_Howe")
    got = list(itertools.islice(repeated.iter_after(at("2024-04-06T12:00+11:00")), 2))
    assert same_instant(got[0], at("2024-04-07T01:45+11:00"))
    assert same_instant(got[1], at("2024-04-08T01:45+10:30"))


def test_leap_days_for_a_century_and_a_half() -> None:
    schedule = CronSchedule.parse("0 0 29 2 *")
    got = list(itertools.islice(schedule.iter_after(at("1999-12-31T00:00Z")), 37))
    leap_years = [y for y in range(2000, 2160) if calendar.isleap(y)]
    assert [g.year for g in got] == leap_years[:37]
    assert all((g.month, g.day, g.hour, g.minute) == (2, 29, 0, 0) for g in got)


def test_rare_schedules_decades_apart() -> None:
    # Feb 29 on an even weekday (Sun, Tue, Thu, Sat): both day fields must match.
    schedule = CronSchedule.parse("0 0 29 2 */2")
    got = [g.date() for g in itertools.islice(schedule.iter_after(at("2000-01-01T00:00Z")), 12)]
    expected = [
        date(y, 2, 29)
        for y in range(2000, 2400)
        if calendar.isleap(y) and date(y, 2, 29).isoweekday() % 7 in (0, 2, 4, 6)
    ][:12]
    assert got == expected


def test_the_end_of_the_calendar_is_a_clear_error() -> None:
    schedule = CronSchedule.parse("0 0 29 2 *")
    with pytest.raises(InvalidInput, match="no firing time after 9997-01-01T00:00:00"):
        schedule.next_after(at("9997-01-01T00:00Z"))
    with pytest.raises(InvalidInput, match="no firing time after"):
        CronSchedule.parse("* * * * *").next_after(at("9999-12-31T23:59Z"))
    with pytest.raises(InvalidInput, match="no firing time after"):
        CronSchedule.parse("* * * * *", tz="Asia/Tokyo").next_after(at("9999-12-31T23:59Z"))


# -- cross-check against the brute force over random schedules and start times -------------

MINUTE_CHOICES = ["*", "*/15", "0", "5,35", "10-50/10", "59", "*/7"]
HOUR_CHOICES = ["*", "*/6", "2", "1-3", "9-17", "0,12", "23", "2/5"]
DOM_CHOICES = ["*", "*", "*", "1-7", "*/2", "15,28", "31", "29-31"]
MONTH_CHOICES = ["*", "*", "*", "*", "*", "*/3", "jan-jun", "2", "10-12", "mar,nov"]
DOW_CHOICES = ["*", "*", "mon-fri", "0", "sat,sun", "5", "*/2", "7"]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
DST_CHANGES = [  # (zone, the instant its clocks change)
    ("Europe/Paris", "2023-03-26T01:00Z"),
    ("Europe/Paris", "2023-10-29T01:00Z"),
    ("Europe/Paris", "2024-03-31T01:00Z"),
    ("Europe/Paris", "2024-10-27T01:00Z"),
    ("America/New_York", "2024-03-10T07:00Z"),
    ("America/New_York", "2024-11-03T06:00Z"),
    ("Australia/Lord_Howe", "2024-04-06T15:00Z"),
    ("Australia/Lord_Howe", "2024-10-05T15:30Z"),
]
# Hours around the changes (all at 01:00-03:00 local time, all on a Sunday).
DST_HOUR_CHOICES = ["*", "1-3", "2", "1", "0-2", "*/2", "2,3", "3"]


def random_cases(n: int, seed: int) -> list[tuple[str, str, datetime]]:
    """Random schedules and start times: half anywhere in 2023-2025, half just before a
    daylight-saving change with a schedule that fires in the hours around it."""
    rng = random.Random(seed)
    cases: list[tuple[str, str, datetime]] = []
    while len(cases) < n:
        if rng.random() < 0.5:
            tz, change = rng.choice(DST_CHANGES)
            fields = [
                rng.choice(MINUTE_CHOICES),
                rng.choice(DST_HOUR_CHOICES),
                rng.choice(["*", "*", "*/2", "1-15"]),
                "*",
                rng.choice(["*", "*", "sun", "0,6"]),
            ]
            start = at(change) + timedelta(seconds=rng.randint(-6 * 3600, 3600))
        else:
            choices = (MINUTE_CHOICES, HOUR_CHOICES, DOM_CHOICES, MONTH_CHOICES, DOW_CHOICES)
            fields = [rng.choice(c) for c in choices]
            tz = rng.choice(ZONES)
            start = at("2023-01-01T00:00Z") + timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
        text = " ".join(fields)
        try:
            CronSchedule.parse(text)
        except InvalidInput:
            continue  # an impossible day/month pair; covered by the error tests
        cases.append((text, tz, start))
    return cases


@pytest.mark.parametrize(("text", "tz", "start"), random_cases(120, seed=20261123))
def test_next_after_agrees_with_the_brute_force(text: str, tz: str, start: datetime) -> None:
    schedule = CronSchedule.parse(text, tz=tz)
    got = schedule.next_after(start)
    days = 21
    brute = brute_next(schedule, start, days=days)
    if brute is None:
        assert got > start + timedelta(days=days), (text, tz, start, got)
        # and nothing was missed just before the far-off firing
        assert same_instant(got, brute_next(schedule, got - timedelta(days=2), days=3) or start)
    else:
        assert same_instant(got, brute), (text, tz, start.isoformat(), got, brute)


@pytest.mark.parametrize(
    ("text", "tz", "start"),
    [
        ("*/10 * * * *", "Europe/Paris", "2024-03-30T00:00Z"),
        ("*/10 * * * *", "Europe/Paris", "2024-10-26T00:00Z"),
        ("0,30 1-3 * * *", "America/New_York", "2024-03-09T00:00Z"),
        ("0,30 1-3 * * *", "America/New_York", "2024-11-02T00:00Z"),
        ("*/5 1-2 * * *", "Australia/Lord_Howe", "2024-04-05T00:00Z"),
        ("*/5 1-2 * * *", "Australia/Lord_Howe", "2024-10-04T00:00Z"),
        ("15 9 13 * fri", "Europe/Paris", "2024-09-01T00:00Z"),
    ],
)
def test_three_weeks_of_firings_agree_with_the_brute_force(text: str, tz: str, start: str) -> None:
    schedule = CronSchedule.parse(text, tz=tz)
    begin = at(start)
    end = begin + timedelta(days=21)
    expected = brute_firings(schedule, begin, end)
    got = list(itertools.takewhile(lambda d: d <= end, schedule.iter_after(begin)))
    assert [g.astimezone(UTC) for g in got] == [e.astimezone(UTC) for e in expected]
    assert all(g.utcoffset() == e.utcoffset() for g, e in zip(got, expected, strict=True))


# -- matches --------------------------------------------------------------------------------


def test_matches() -> None:
    daily = CronSchedule.parse("@daily")
    assert daily.matches(at("2024-01-01T00:00Z"))
    assert daily.matches(at("2024-01-01T01:00+01:00"))
    assert not daily.matches(at("2024-01-01T00:00:01Z"))
    assert not daily.matches(at("2024-01-01T00:01Z"))
    paris = CronSchedule.parse("30 2 * * *", tz="Europe/Paris")
    assert paris.matches(at("2024-10-27T02:30+02:00"))
    assert not paris.matches(at("2024-10-27T02:30+01:00"))  # the repeat does not fire
    assert paris.matches(datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=0))
    assert not paris.matches(datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1))
    assert paris.matches(at("2024-03-31T03:00+02:00"))  # the end of the gap
    assert not paris.matches(at("2024-03-31T03:30+02:00"))


# -- canonical text, equality and records ---------------------------------------------------

CANONICAL = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("  0   0 *\t* *  ", "0 0 * * *"),
    ("0 0 * * 7", "0 0 * * 0"),
    ("0 0 * * SUN", "0 0 * * 0"),
    ("0 0 * * 0-7", "0 0 * * 0-6"),
    ("0,15,30,45 * * * *", "*/15 * * * *"),
    ("0-59 * * * *", "* * * * *"),
    ("*/1 * * * *", "* * * * *"),
    ("3,1,2,5 * * * *", "1-3,5 * * * *"),
    ("1,2 * * * *", "1,2 * * * *"),
    ("10-50/10 * * * *", "10-50/10 * * * *"),
    ("5/15 * * * *", "5-50/15 * * * *"),
    ("0 0 1-31 * mon", "0 0 1-31 * 1"),
    ("0 0 * jan-mar mon-fri", "0 0 * 1-3 1-5"),
    ("0 0 */2 * *", "0 0 */2 * *"),
    ("0 0 1-31/2 * *", "0 0 1-31/2 * *"),
    ("0 0 * * */2", "0 0 * * */2"),
    ("0 0 * * 0,2,4,6", "0 0 * * 0-6/2"),
    ("0 0,12 * * *", "0 */12 * * *"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_canonical_text(text: str, canonical: str) -> None:
    schedule = CronSchedule.parse(text)
    assert str(schedule) == canonical
    assert CronSchedule.parse(canonical) == schedule
    assert str(CronSchedule.parse(canonical)) == canonical


@pytest.mark.parametrize(("text", "tz", "start"), random_cases(60, seed=7))
def test_canonical_text_parses_back_to_the_same_schedule(
    text: str, tz: str, start: datetime
) -> None:
    schedule = CronSchedule.parse(text, tz=tz)
    again = CronSchedule.parse(str(schedule), tz=tz)
    assert again == schedule
    assert hash(again) == hash(schedule)
    assert same_instant(again.next_after(start), schedule.next_after(start))


def test_equality_repr_and_records() -> None:
    daily = CronSchedule.parse("@daily", tz="Europe/Paris")
    assert daily == CronSchedule.parse("0 0 * * *", tz="Europe/Paris")
    assert daily != CronSchedule.parse("0 0 * * *")
    assert repr(daily) == "CronSchedule('0 0 * * *', tz='Europe/Paris')"
    assert daily.to_dict() == {"text": "@daily", "tz": "Europe/Paris"}
    assert CronSchedule.from_dict(daily.to_dict()) == daily
    assert CronSchedule.from_dict({"text": "0 0 * * *"}).tz == "UTC"
    assert CronSchedule.parse("0 0 * * *").zone is UTC
    assert CronSchedule.parse("0 0 * * *", tz="utc") == CronSchedule.parse("0 0 * * *")
    assert daily.zone == PARIS


# -- bad input ------------------------------------------------------------------------------

BAD = [
    ("x 0 * * *", "minute 'x' is not a number, range, list or step (0-59)"),
    ("mon 0 * * *", "minute 'mon' is not a number, range, list or step (0-59)"),
    ("-5 * * * *", "minute '-5' is not a number, range, list or step (0-59)"),
    ("+5 * * * *", "minute '+5' is not a number, range, list or step (0-59)"),
    ("\u0665 * * * *", "minute '\u0665' is not a number, range, list or step (0-59)"),
    ("1-2-3 * * * *", "minute '1-2-3' is not a number, range, list or step (0-59)"),
    ("*/x * * * *", "minute '*/x' is not a number, range, list or step (0-59)"),
    ("1/2/3 * * * *", "minute '1/2/3' is not a number, range, list or step (0-59)"),
    ("60 * * * *", "minute '60' is out of range (0-59)"),
    ("0-60 * * * *", "minute '0-60' is out of range (0-59)"),
    ("0 24 * * *", "hour '24' is out of range (0-23)"),
    ("0 0 0 * *", "day-of-month '0' is out of range (1-31)"),
    ("0 0 32 * *", "day-of-month '32' is out of range (1-31)"),
    ("0 0 * 0 *", "month '0' is out of range (1-12 or jan-dec)"),
    ("0 0 * 13 *", "month '13' is out of range (1-12 or jan-dec)"),
    ("0 0 * * 8", "day-of-week '8' is out of range (0-7 or sun-sat)"),
    ("0 0 * foo *", "month 'foo' is not a number, range, list or step (1-12 or jan-dec)"),
    ("0 0 * january *", "month 'january' is not a number, range, list or step (1-12 or jan-dec)"),
    ("0 0 * mon *", "month 'mon' is not a number, range, list or step (1-12 or jan-dec)"),
    ("0 0 * * jan", "day-of-week 'jan' is not a number, range, list or step (0-7 or sun-sat)"),
    (
        "0 0 * * Mon-Xyz",
        "day-of-week 'Mon-Xyz' is not a number, range, list or step (0-7 or sun-sat)",
    ),
    ("0 0 ? * mon", "day-of-month '?' is not a number, range, list or step (1-31)"),
    ("0 0 L * *", "day-of-month 'L' is not a number, range, list or step (1-31)"),
    ("0 0 * * 5#3", "day-of-week '5#3' is not a number, range, list or step (0-7 or sun-sat)"),
    (
        "0 22-2 * * *",
        "hour '22-2' is a backwards range (22 > 2); write it as a list, e.g. '22-23,0-2' (0-23)",
    ),
    (
        "0 0 * * fri-sun",
        "day-of-week 'fri-sun' is a backwards range (5 > 0); write it as a list, e.g. '5-7' "
        "(0-7 or sun-sat)",
    ),
    (
        "0 0 * * fri-mon",
        "day-of-week 'fri-mon' is a backwards range (5 > 1); write it as a list, e.g. '5-7,1' "
        "(0-7 or sun-sat)",
    ),
    (
        "0 0 * dec-jan *",
        "month 'dec-jan' is a backwards range (12 > 1); write it as a list, e.g. '12,1' "
        "(1-12 or jan-dec)",
    ),
    ("*/0 * * * *", "minute '*/0' has a step of 0; a step must be 1-59"),
    ("*/60 * * * *", "minute '*/60' has a step of 60; a step must be 1-59"),
    ("0 */24 * * *", "hour '*/24' has a step of 24; a step must be 1-23"),
    ("0 0 */31 * *", "day-of-month '*/31' has a step of 31; a step must be 1-30"),
    ("0 0 * */12 *", "month '*/12' has a step of 12; a step must be 1-11"),
    ("0 0 * * */7", "day-of-week '*/7' has a step of 7; a step must be 1-6"),
    ("1,,2 * * * *", "minute '1,,2' has an empty list item (0-59)"),
    ("1, * * * *", "minute '1,' has an empty list item (0-59)"),
    (
        "",
        "expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as "
        "@daily, got nothing",
    ),
    (
        "   ",
        "expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as "
        "@daily, got nothing",
    ),
    (
        "* * * *",
        "expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as "
        "@daily, got 4",
    ),
    (
        "0 0 * * * *",
        "expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as "
        "@daily, got 6; seconds and years are not supported",
    ),
    (
        "@fortnightly",
        "unknown macro '@fortnightly'; use one of @hourly, @daily, @midnight, @weekly, "
        "@monthly, @yearly, @annually or five fields (minute hour day-of-month month day-of-week)",
    ),
    (
        "@reboot",
        "unknown macro '@reboot'; use one of @hourly, @daily, @midnight, @weekly, "
        "@monthly, @yearly, @annually or five fields (minute hour day-of-month month day-of-week)",
    ),
    (
        "@daily 5",
        "unknown macro '@daily 5'; use one of @hourly, @daily, @midnight, @weekly, "
        "@monthly, @yearly, @annually or five fields (minute hour day-of-month month day-of-week)",
    ),
    ("0 0 30 2 *", "never fires: day-of-month '30' does not occur in month '2' (at most 29 days)"),
    (
        "0 0 31 4,6,9,11 *",
        "never fires: day-of-month '31' does not occur in month '4,6,9,11' (at most 30 days)",
    ),
    (
        "0 0 30-31 feb *",
        "never fires: day-of-month '30-31' does not occur in month 'feb' (at most 29 days)",
    ),
    (
        "0 0 31 feb */2",
        "never fires: day-of-month '31' does not occur in month 'feb' (at most 29 days)",
    ),
]


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_bad_cron_text_names_the_field_the_token_and_the_range(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        CronSchedule.parse(text)
    assert str(caught.value) == f"cron '{text}': {problem}"
    assert caught.value.http_status == 400
    assert caught.value.to_dict()["details"] == {"cron": text}


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "../etc/passwd", "Europe/"])
def test_an_unknown_timezone(tz: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        CronSchedule.parse("0 0 * * *", tz=tz)
    assert str(caught.value) == (
        f"cron '0 0 * * *': unknown timezone '{tz}'; "
        "use an IANA name such as 'Europe/Paris' or 'UTC'"
    )


def test_a_cron_that_is_not_a_string() -> None:
    with pytest.raises(
        InvalidInput, match=r"^a cron schedule must be a string such as '0 3 \* \* \*', got int$"
    ):
        CronSchedule.parse(5)  # type: ignore[arg-type]
    with pytest.raises(
        InvalidInput, match="a timezone must be a name such as 'Europe/Paris', got 2"
    ):
        CronSchedule.parse("0 0 * * *", tz=2)  # type: ignore[arg-type]


@pytest.mark.parametrize("call", ["next_after", "matches", "iter_after"])
def test_a_naive_datetime_is_refused(call: str) -> None:
    schedule = CronSchedule.parse("0 0 * * *")
    with pytest.raises(InvalidInput) as caught:
        getattr(schedule, call)(datetime(2024, 1, 1))
    assert str(caught.value) == (
        "cron '0 0 * * *': needs a timezone-aware datetime, got 2024-01-01T00:00:00; "
        "pass e.g. datetime.now(timezone.utc)"
    )


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("0 0 * * *", "a cron schedule record must be a mapping, got str"),
        ({}, "a cron schedule record needs 'text', e.g. {'text': '0 3 * * *'}"),
        (
            {"text": "0 0 * * *", "when": 1},
            "a cron schedule record has unknown keys ['when']; expected 'text' and 'tz'",
        ),
        (
            {"text": "0 0 * * *", "tz": None},
            "a cron schedule's 'tz' must be a string such as 'Europe/Paris', got NoneType",
        ),
        ({"text": None}, "a cron schedule must be a string such as '0 3 * * *', got NoneType"),
        (
            {"text": "0 0 30 2 *"},
            "cron '0 0 30 2 *': never fires: day-of-month '30' does not occur in month '2' "
            "(at most 29 days)",
        ),
    ],
)
def test_bad_records(record: object, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        CronSchedule.from_dict(record)  # type: ignore[arg-type]
    assert str(caught.value) == problem
