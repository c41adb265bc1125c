"""Cron schedules: parse a five-field cron string and compute when it next fires.

The fields are ``minute hour day-of-month month day-of-week`` with ``*``, lists (``1,2``),
ranges (``1-5``), steps (``*/15``, ``10-50/10``, and ``5/15`` meaning ``5-59/15``), month and
weekday names (``jan``, ``mon``; any case), and both ``0`` and ``7`` for Sunday. The macros
``@hourly @daily @midnight @weekly @monthly @yearly @annually`` stand for their usual fields.

Days follow Vixie cron (what cronie and Debian's cron run): a day field counts as unrestricted
when it is written exactly ``*`` or ``*/step``. When both day-of-month and day-of-week are
restricted, a day matches if EITHER matches (``0 0 13 * fri`` fires on every 13th and on every
Friday); otherwise both must match (``0 0 */2 * mon`` fires on odd-numbered days that are
Mondays).

A schedule is a set of local wall-clock times in its timezone (UTC unless given). Each matching
wall-clock time fires once, at the first instant the local clock reaches or passes it. So across
daylight-saving changes:

* a time that does not exist (the hour skipped in spring) fires at the end of the gap, and all
  matching times inside one gap fire together, once (``30 2 * * *`` in Europe/Paris fires at
  03:00 CEST on the last Sunday of March);
* a time that happens twice (the hour repeated in autumn) fires at its first occurrence only
  (``30 2 * * *`` fires at 02:30 CEST, not again at 02:30 CET; ``*/15 * * * *`` pauses during
  the repeated hour). Use ``tz="UTC"`` for a schedule that must tick steadily in real time.

``next_after`` searches field by field (year, month, day, hour, minute), never minute by
minute, so a schedule that fires once in years (``0 0 29 2 *``: after 29 February 2096 comes
2104) is as fast as any other, and a schedule that can never fire (``0 0 30 2 *``) is refused
when parsed.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import MAXYEAR, UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mloop.errors import InvalidInput

__all__ = ["CronSchedule"]

_MINUTE = timedelta(minutes=1)
_FIELD_NAMES = "minute hour day-of-month month day-of-week"
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# The longest each month can be (February in a leap year), to refuse impossible days up front.
_MONTH_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Every (month, day, weekday) combination recurs within one 400-year Gregorian cycle.
_SEARCH_YEARS = 401
# The longest wall-clock gap any timezone has skipped (Samoa dropped a whole day in 2011).
_MAX_GAP_MINUTES = 2 * 24 * 60

_ITEM = re.compile(r"(?P<base>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>[0-9]+))?", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")
_STARRED = re.compile(r"\*(?:/[0-9]+)?")


@dataclass(frozen=True)
class _Field:
    """How one of the five fields is written: its name, bounds and optional names."""

    name: str
    lo: int
    hi: int  # the highest value accepted in text (7 for day-of-week: Sunday again)
    star_hi: int  # the highest value '*' covers (6 for day-of-week)
    names: tuple[str, ...] = ()
    name_base: int = 0

    @property
    def allowed(self) -> str:
        """The allowed values as shown in error messages, e.g. ``1-12 or jan-dec``."""
        if self.names:
            return f"{self.lo}-{self.hi} or {self.names[0]}-{self.names[-1]}"
        return f"{self.lo}-{self.hi}"


_FIELDS = (
    _Field("minute", 0, 59, 59),
    _Field("hour", 0, 23, 23),
    _Field("day-of-month", 1, 31, 31),
    _Field("month", 1, 12, 12, _MONTHS, 1),
    _Field("day-of-week", 0, 7, 6, _WEEKDAYS, 0),
)
_MINUTE_F, _HOUR_F, _DOM_F, _MONTH_F, _DOW_F = _FIELDS


def _error(text: str, problem: str) -> InvalidInput:
    return InvalidInput(f"cron '{text}': {problem}", cron=text)


@dataclass(frozen=True, repr=False)
class CronSchedule:
    """A parsed cron schedule in a timezone; build it with :meth:`CronSchedule.parse`."""

    text: str = field(compare=False)
    tz: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]  # 0 is Sunday; 7 is folded into 0
    day_of_month_restricted: bool
    day_of_week_restricted: bool

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, tz: str = "UTC") -> CronSchedule:
        """Parse a five-field cron string or macro, in an IANA timezone (UTC by default)."""
        if not isinstance(text, str):
            raise InvalidInput(
                f"a cron schedule must be a string such as '0 3 * * *', got {type(text).__name__}"
            )
        if _zone(text, tz) is UTC:  # fail now, not at the first next_after
            tz = "UTC"
        spec = text.strip()
        if spec.startswith("@"):
            parts = spec.split()
            macro = parts[0].lower()
            if len(parts) != 1 or macro not in _MACROS:
                raise _error(
                    text,
                    f"unknown macro '{spec}'; use one of {', '.join(_MACROS)} "
                    f"or five fields ({_FIELD_NAMES})",
                )
            spec = _MACROS[macro]
        parts = spec.split()
        if len(parts) != 5:
            hint = "; seconds and years are not supported" if len(parts) in (6, 7) else ""
            got = "nothing" if not parts else f"{len(parts)}"
            raise _error(
                text,
                f"expected 5 fields ({_FIELD_NAMES}) or a macro such as @daily, got {got}{hint}",
            )
        sets = [_parse_field(text, f, raw) for f, raw in zip(_FIELDS, parts, strict=True)]
        minutes, hours, doms, months, dows = sets
        schedule = cls(
            text=text,
            tz=tz,
            minutes=minutes,
            hours=hours,
            days_of_month=doms,
            months=months,
            days_of_week=dows,
            day_of_month_restricted=_STARRED.fullmatch(parts[2]) is None,
            day_of_week_restricted=_STARRED.fullmatch(parts[4]) is None,
        )
        schedule._check_can_fire(parts)
        return schedule

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CronSchedule:
        """Rebuild a schedule from :meth:`to_dict`'s ``{"text": ..., "tz": ...}``."""
        if not isinstance(data, Mapping):
            raise InvalidInput(
                f"a cron schedule record must be a mapping, got {type(data).__name__}"
            )
        unknown = sorted(str(k) for k in set(data) - {"text", "tz"})
        if unknown:
            raise InvalidInput(
                f"a cron schedule record has unknown keys {unknown}; expected 'text' and 'tz'"
            )
        if "text" not in data:
            raise InvalidInput("a cron schedule record needs 'text', e.g. {'text': '0 3 * * *'}")
        tz = data.get("tz", "UTC")
        if not isinstance(tz, str):
            raise InvalidInput(
                f"a cron schedule's 'tz' must be a string such as 'Europe/Paris', "
                f"got {type(tz).__name__}"
            )
        return cls.parse(data["text"], tz=tz)

    def to_dict(self) -> dict[str, str]:
        """The schedule as JSON-able ``{"text": ..., "tz": ...}`` (the text as written)."""
        return {"text": self.text, "tz": self.tz}

    def _check_can_fire(self, parts: list[str]) -> None:
        # With the OR rule every month has each weekday, so only the AND rule can be impossible;
        # then any (month, day) that exists falls on every weekday in some year.
        if self._either_day:
            return
        if any(d <= _MONTH_MAX_DAYS[m - 1] for m in self.months for d in self.days_of_month):
            return
        longest = max(_MONTH_MAX_DAYS[m - 1] for m in self.months)
        raise _error(
            self.text,
            f"never fires: day-of-month '{parts[2]}' does not occur in month '{parts[3]}' "
            f"(at most {longest} days)",
        )

    # -- questions --------------------------------------------------------------------------

    @property
    def _either_day(self) -> bool:
        return self.day_of_month_restricted and self.day_of_week_restricted

    @property
    def zone(self) -> tzinfo:
        """The timezone the fields are read in."""
        return _zone(self.text, self.tz)

    def next_after(self, dt: datetime) -> datetime:
        """The first firing time strictly after ``dt`` (aware), in the schedule's timezone."""
        after = self._to_utc(dt)
        try:
            found = self._next_after_utc(after)
        except OverflowError:  # ran off the end of datetime's calendar
            found = None
        if found is None:
            raise _error(self.text, f"no firing time after {dt.isoformat()} before year 10000")
        return found

    def _next_after_utc(self, after: datetime) -> datetime | None:
        zone = self.zone
        local = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0, fold=0)
        start = local + _MINUTE
        while (wall := self._next_wall(start)) is not None:
            at = _resolve(wall, zone)
            # Compare in UTC: Python ignores fold when both sides share a tzinfo.
            if at.astimezone(UTC) > after:
                return at
            # A wall time already reached earlier (the second pass of a repeated hour).
            start = wall + _MINUTE
        return None

    def iter_after(self, dt: datetime) -> Iterator[datetime]:
        """Every firing time strictly after ``dt`` (aware), in order, without end."""
        self._to_utc(dt)  # refuse a naive datetime now, not at the first next()
        return self._iterate(dt)

    def _iterate(self, dt: datetime) -> Iterator[datetime]:
        while True:
            dt = self.next_after(dt)
            yield dt

    def matches(self, dt: datetime) -> bool:
        """Whether the schedule fires at exactly the instant ``dt`` (aware)."""
        at = self._to_utc(dt)
        return self.next_after(at - timedelta(microseconds=1)).astimezone(UTC) == at

    # -- text -------------------------------------------------------------------------------

    def __str__(self) -> str:
        """The canonical five fields: numbers only, macros expanded, lists merged."""
        return " ".join(
            (
                _render(self.minutes, _MINUTE_F, star=True),
                _render(self.hours, _HOUR_F, star=True),
                _render(self.days_of_month, _DOM_F, star=not self.day_of_month_restricted),
                _render(self.months, _MONTH_F, star=True),
                _render(self.days_of_week, _DOW_F, star=not self.day_of_week_restricted),
            )
        )

    def __repr__(self) -> str:
        return f"CronSchedule({str(self)!r}, tz={self.tz!r})"

    # -- search -----------------------------------------------------------------------------

    def _to_utc(self, dt: datetime) -> datetime:
        if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
            shown = dt.isoformat() if isinstance(dt, datetime) else repr(dt)
            raise _error(
                self.text,
                f"needs a timezone-aware datetime, got {shown}; "
                "pass e.g. datetime.now(timezone.utc)",
            )
        try:
            return dt.astimezone(UTC)
        except OverflowError:
            raise _error(self.text, f"{dt.isoformat()} is out of range") from None

    def _next_wall(self, start: datetime) -> datetime | None:
        """The first local wall-clock minute at or after ``start`` (naive) matching the fields."""
        last_year = min(start.year + _SEARCH_YEARS, MAXYEAR)
        for year in range(start.year, last_year + 1):
            first_month = start.month if year == start.year else 1
            for month in self.months[bisect_left(self.months, first_month) :]:
                same_month = year == start.year and month == start.month
                for day in self._days(year, month):
                    if same_month and day < start.day:
                        continue
                    same_day = same_month and day == start.day
                    first_hour = start.hour if same_day else 0
                    for hour in self.hours[bisect_left(self.hours, first_hour) :]:
                        same_hour = same_day and hour == start.hour
                        i = bisect_left(self.minutes, start.minute) if same_hour else 0
                        if i < len(self.minutes):
                            return datetime(year, month, day, hour, self.minutes[i])
        return None

    def _days(self, year: int, month: int) -> list[int]:
        """The days of that month the day-of-month and day-of-week fields allow."""
        first_weekday, length = calendar.monthrange(year, month)  # Monday is 0 there
        doms, dows = self.days_of_month, self.days_of_week
        either = self._either_day
        days = []
        for day in range(1, length + 1):
            dom_ok = day in doms
            dow_ok = (first_weekday + day) % 7 in dows  # cron's weekday: Sunday is 0
            if (dom_ok or dow_ok) if either else (dom_ok and dow_ok):
                days.append(day)
        return days


def _zone(text: str, tz: str) -> tzinfo:
    if not isinstance(tz, str):
        raise _error(text, f"a timezone must be a name such as 'Europe/Paris', got {tz!r}")
    if tz.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _error(
            text, f"unknown timezone '{tz}'; use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None


def _resolve(wall: datetime, zone: tzinfo) -> datetime:
    """When the local clock first shows ``wall``: its first occurrence, or the end of its gap."""
    if zone is UTC:
        return wall.replace(tzinfo=zone)
    for minutes in range(_MAX_GAP_MINUTES):
        candidate = wall + minutes * _MINUTE
        at = candidate.replace(tzinfo=zone, fold=0).astimezone(UTC).astimezone(zone)
        if at.replace(tzinfo=None) == candidate:
            return at
    return wall.replace(tzinfo=zone, fold=0)  # no zone skips two days; keep the usual offset


def _parse_field(text: str, f: _Field, raw: str) -> tuple[int, ...]:
    values: set[int] = set()
    for item in raw.split(","):
        if not item:
            raise _error(text, f"{f.name} '{raw}' has an empty list item ({f.allowed})")
        values.update(_parse_item(text, f, item))
    if f is _DOW_F and 7 in values:
        values.discard(7)
        values.add(0)
    return tuple(sorted(values))


def _parse_item(text: str, f: _Field, item: str) -> range:
    match = _ITEM.fullmatch(item)
    if match is None:
        raise _error(text, f"{f.name} '{item}' is not a number, range, list or step ({f.allowed})")
    base, step_text = match["base"], match["step"]
    if base == "*":
        first, last = f.lo, f.star_hi
    elif "-" in base:
        a, b = base.split("-")
        first, last = _value(text, f, item, a), _value(text, f, item, b)
        if first > last:
            raise _error(
                text,
                f"{f.name} '{item}' is a backwards range ({first} > {last}); "
                f"write it as a list, e.g. '{_wrapped(f, first, last)}' ({f.allowed})",
            )
    else:
        first = _value(text, f, item, base)
        # '5/15' means from 5 to the end of the field, as in cronie.
        last = first if step_text is None else f.star_hi
    step = 1
    if step_text is not None:
        step = int(step_text)
        span = f.star_hi - f.lo
        if not 1 <= step <= span:
            raise _error(text, f"{f.name} '{item}' has a step of {step}; a step must be 1-{span}")
    return range(first, last + 1, step)


def _value(text: str, f: _Field, item: str, token: str) -> int:
    if _DIGITS.fullmatch(token):
        value = int(token)
        if not f.lo <= value <= f.hi:
            raise _error(text, f"{f.name} '{item}' is out of range ({f.allowed})")
        return value
    if token.lower() in f.names:
        return f.name_base + f.names.index(token.lower())
    raise _error(text, f"{f.name} '{item}' is not a number, range, list or step ({f.allowed})")


def _wrapped(f: _Field, first: int, last: int) -> str:
    """A backwards range written forwards: '22-2' as '22-23,0-2'."""
    lo, hi = f.lo, f.hi
    if f is _DOW_F:
        lo = 1  # 7 already stands for Sunday, so '5-0' is '5-7'
        if last == 0:
            return f"{first}-7"
    head = f"{first}" if first == hi else f"{first}-{hi}"
    tail = f"{lo}" if last == lo else f"{lo}-{last}"
    return f"{head},{tail}"


def _render(values: tuple[int, ...], f: _Field, *, star: bool) -> str:
    """One field in canonical form; ``star`` says whether it may be written with '*'."""
    if star:
        if values == tuple(range(f.lo, f.star_hi + 1)):
            return "*"
        if len(values) >= 2 and values[0] == f.lo:
            step = values[1] - values[0]
            if values == tuple(range(f.lo, f.star_hi + 1, step)):
                return f"*/{step}"
    if len(values) >= 3:
        step = values[1] - values[0]
        if step > 1 and values == tuple(range(values[0], values[-1] + 1, step)):
            return f"{values[0]}-{values[-1]}/{step}"
    parts: list[str] = []
    run_start = prev = values[0]
    for value in (*values[1:], None):
        if value is not None and value == prev + 1:
            prev = value
            continue
        if prev - run_start >= 2:
            parts.append(f"{run_start}-{prev}")
        else:
            parts.extend(str(v) for v in range(run_start, prev + 1))
        if value is not None:
            run_start = prev = value
    return ",".join(parts)
