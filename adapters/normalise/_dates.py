"""Dates in the forms local data uses, to ISO 8601 ``YYYY-MM-DD`` (GB/T 7408.1)."""

from __future__ import annotations

import datetime as _dt
import re
from itertools import compress, repeat
from operator import itemgetter, not_

from adapters.normalise._errors import NormaliseError
from adapters.normalise._text import halfwidth

__all__ = ["normalise_date", "parse_date"]

# 2020-01-02, 2020-1-2, 2020/1/2, 2020.01.02, 2020年1月2日, optionally followed by a
# time (which is dropped): "2020-01-02 08:30", "2020-01-02T08:30:00+08:00".
_SEPARATED = re.compile(
    r"([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*日?"
    r"(?:[ T][0-9]{1,2}[:时][0-9]{1,2}(?:[:分][0-9]{1,2}(?:\.[0-9]+)?秒?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?",
    re.ASCII,
)
# 20200102 (basic form), optionally followed by a basic-form time.
_BASIC = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:T?[0-9]{4,6})?", re.ASCII)
_MIN_YEAR = 1000


def parse_date(value: str) -> _dt.date:
    """Parse one date string; raise :class:`NormaliseError` when it is not a calendar date."""
    return _dt.date(*_parts(value))


def _parts(value: str) -> tuple[int, int, int]:
    """Year, month and day of a date string in a known form, checked against the calendar."""
    text = value if value.isascii() else halfwidth(value)
    match = _SEPARATED.fullmatch(text) or _BASIC.fullmatch(text)
    if match is None:
        text = text.strip()
        match = _SEPARATED.fullmatch(text) or _BASIC.fullmatch(text)
    if match is None:
        raise NormaliseError(
            "date",
            f"not a date in a known form (2020-01-02, 20200102, 2020年1月2日, 2020/1/2, 2020.01.02): {value!r}",
            f"无法识别的日期格式（可用 2020-01-02、20200102、2020年1月2日、2020/1/2、2020.01.02）：{value}",
        )
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    if _valid(year, month, day):
        return year, month, day
    if year < _MIN_YEAR:
        raise NormaliseError("date", f"year {year} out of range in {value!r}", f"年份超出范围：{value}")
    try:
        _dt.date(year, month, day)
    except ValueError as exc:
        raise NormaliseError(
            "date", f"not a calendar date: {value!r} ({exc})", f"不是有效的日历日期：{value}"
        ) from exc
    raise AssertionError("unreachable: _valid and date() disagree")  # pragma: no cover


def normalise_date(value: str) -> str:
    """Return ``YYYY-MM-DD``; fast paths for the ISO and basic forms, the general parser otherwise."""
    n = len(value)
    if n == 10 and value[4] == "-" and value[5:] in _ISO_MONTH_DAYS:
        year = value[:4]
        if year.isdigit() and year.isascii() and year >= "1000" and (value[5:] != "02-29" or _leap(int(year))):
            return value
    elif n == 8 and value[4:] in _BASIC_MONTH_DAYS:
        year = value[:4]
        if year.isdigit() and year.isascii() and year >= "1000" and (value[4:] != "0229" or _leap(int(year))):
            return f"{year}-{value[4:6]}-{value[6:]}"
    year_, month, day = _parts(value)
    return f"{year_:04d}-{month:02d}-{day:02d}"


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


_ISO_MONTH_DAYS = frozenset(f"{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, _DAYS[m] + 1))
_BASIC_MONTH_DAYS = frozenset(f"{m:02d}{d:02d}" for m in range(1, 13) for d in range(1, _DAYS[m] + 1))


def _valid(year: int, month: int, day: int) -> bool:
    if year < _MIN_YEAR or not 1 <= month <= 12 or not 1 <= day <= _DAYS[month]:
        return False
    return month != 2 or day < 29 or (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0))



# --- the mapping engine's block form: a block of dates in the common forms, in a few C calls.
# A form the block settles: YYYY-M-D with -, /, . or 年/月 as separators (and an optional 日),
# or YYYYMMDD; nothing around it. Such a date is, by normalise_date, the same digits zero-padded
# and joined by "-" when it is a calendar date (year >= 1000), and an error otherwise.
_COMMON = "[0-9]{4}[-/.\u5e74][0-9]{1,2}[-/.\u6708][0-9]{1,2}\u65e5?|[0-9]{8}"
_COMMON_ONE = re.compile(_COMMON, re.ASCII)
_COMMON_LINES = re.compile(f"(?:(?:{_COMMON})\n)*(?:{_COMMON})", re.ASCII)
_SEPARATORS = (("\u5e74", "-"), ("\u6708", "-"), ("\u65e5", ""), ("/", "-"), (".", "-"))
_MONTH_DAY = itemgetter(slice(5, None))


def _date_block(values: list[str]) -> list[str | None]:
    """``normalise_date`` of each value, for the mapping engine's block path; None where the
    value is not in a common form or not a calendar date (the caller then asks
    ``normalise_date``, which gives the exact error)."""
    if not values:
        return []
    joined = "\n".join(values)
    settled: list[bool] | None = None
    common = values
    if joined.count("\n") != len(values) - 1 or _COMMON_LINES.fullmatch(joined) is None:
        settled = [m is not None for m in map(_COMMON_ONE.fullmatch, values)]  # settle the others
        common = list(compress(values, settled))
        if not common:
            return [None] * len(values)
    digits = list(map(str.isdigit, common))  # YYYYMMDD, else YYYY?M?D
    if True not in digits:
        dates = _separated(common)
    elif False not in digits:
        dates = [f"{v[:4]}-{v[4:6]}-{v[6:]}" for v in common]
    else:
        others = iter(_separated(list(compress(common, map(not_, digits)))))
        dates = [f"{v[:4]}-{v[4:6]}-{v[6:]}" if d else next(others) for v, d in zip(common, digits, strict=True)]
    checked: list[str | None] = dates  # type: ignore[assignment]
    month_days = list(map(_MONTH_DAY, dates))
    # every one is YYYY-MM-DD: the smallest is the smallest year
    if min(dates) < "1000" or not _ISO_MONTH_DAYS.issuperset(month_days) or "02-29" in month_days:
        checked = [d if _calendar_ok(d) else None for d in dates]
    if settled is None:
        return checked
    found = iter(checked)
    return [next(found) if ok else None for ok in settled]


def _separated(values: list[str]) -> list[str]:
    """YYYY?M?D values (two separators each, an optional 日 at the end) as YYYY-MM-DD."""
    text = "-".join(values)
    for old, new in _SEPARATORS:
        if old in text:
            text = text.replace(old, new)
    fields = text.split("-")  # year, month, day, year, month, day ...
    months = map(str.zfill, fields[1::3], repeat(2))
    days = map(str.zfill, fields[2::3], repeat(2))
    return list(map("-".join, zip(fields[0::3], months, days, strict=True)))


def _calendar_ok(d: str) -> bool:
    return d >= "1000" and d[5:] in _ISO_MONTH_DAYS and (d[5:] != "02-29" or _leap(int(d[:4])))


normalise_date.block = _date_block  # type: ignore[attr-defined]
