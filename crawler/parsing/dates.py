"""Dates as VSB templates print them, turned into aware Asia/Shanghai datetimes.

Date-only values get 00:00 Asia/Shanghai. That time is arbitrary but *stable*: the same list entry
parsed on two different days yields the same instant, so feeds do not reorder or re-announce items.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

_MIN_YEAR, _MAX_YEAR = 1900, 2100  # anything else is a phone number or an id, not a date
_FUTURE_SLACK = timedelta(days=1)  # list pages in UTC+8 may be "tomorrow" for a UTC reference

_TIME = r"(?:(?:T|\s*)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?(?!\d))?"
_FULL = re.compile(
    r"(?<!\d)(?P<y>\d{4})\s*(?:"
    r"(?P<sep>[-/.])\s*(?P<m>\d{1,2})\s*(?P=sep)\s*(?P<d>\d{1,2})"
    r"|年\s*(?P<m2>\d{1,2})\s*月\s*(?P<d2>\d{1,2})\s*日?"
    r")(?!\d)" + _TIME
)
# Month-day forms only count when they are the whole text (an optional short label and brackets
# allowed): inside running text "10月16日下午" is a mention, not a publication date.
_LABEL = r"(?:[^\d\[【(]{0,10}:)?\s*"
_MONTH_DAY = re.compile(
    r"^" + _LABEL + r"[\[【(]?\s*(?P<m>\d{1,2})\s*(?:[-/.]|月)\s*(?P<d>\d{1,2})\s*日?\s*[\]】)]?" + _TIME + r"\s*$"
)
_ONLY_FULL = re.compile(r"^" + _LABEL + r"[\[【(]?\s*" + _FULL.pattern + r"\s*[\]】)]?\s*$")


def _normalize(text: str) -> str:
    # NFKC folds full-width digits, colons and brackets ("２０２４：" -> "2024:"), U+3000 -> space
    return unicodedata.normalize("NFKC", text)


def _reference(reference: datetime | None) -> datetime:
    if reference is None:
        return datetime.now(SHANGHAI)
    try:
        if reference.tzinfo is None:
            return reference.replace(tzinfo=SHANGHAI)
        return reference.astimezone(SHANGHAI)
    except (OverflowError, ValueError):
        return datetime.now(SHANGHAI)


def _time_of(match: re.Match[str]) -> tuple[int, int, int] | None:
    """(hour, minute, second) when the match carries a valid time; an invalid time is ignored."""
    if match.group("H") is None:
        return None
    hour, minute, second = int(match.group("H")), int(match.group("M")), int(match.group("S") or 0)
    if hour < 24 and minute < 60 and second < 60:
        return hour, minute, second
    return None


def _build(year: int, month: int, day: int, hms: tuple[int, int, int] | None) -> datetime | None:
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return None
    try:
        return datetime(year, month, day, *(hms or (0, 0, 0)), tzinfo=SHANGHAI)
    except ValueError:
        return None


def _full_date(match: re.Match[str]) -> tuple[datetime | None, bool]:
    month = match.group("m") or match.group("m2")
    day = match.group("d") or match.group("d2")
    hms = _time_of(match)
    value = _build(int(match.group("y")), int(month), int(day), hms)
    return (value, hms is None) if value else (None, False)


def _month_day(match: re.Match[str], reference: datetime | None) -> tuple[datetime | None, bool]:
    """Pick the most recent year that does not put the date more than a day after the reference."""
    ref = _reference(reference)
    try:
        limit = ref + _FUTURE_SLACK
    except OverflowError:
        limit = ref
    month, day, hms = int(match.group("m")), int(match.group("d")), _time_of(match)
    for year in range(ref.year + 1, ref.year - 9, -1):  # 8 years back reaches a leap year for 02-29
        value = _build(year, month, day, hms)
        if value is not None and value <= limit:
            return value, hms is None
    return None, False


def parse_date(text: str, reference: datetime | None = None) -> tuple[datetime | None, bool]:
    """Parse the first valid date in ``text``; returns ``(aware datetime | None, date_only)``.

    Full dates (``2024-10-24``, ``2024/10/24``, ``2024.10.24``, ``2024年10月24日``, optional
    ``14:30[:05]``) are found anywhere in the text. Month-day forms (``10-24``, ``[10-24]``,
    ``10月24日``) must be the whole text; their year comes from ``reference`` (default: now).
    Invalid dates give ``(None, False)``. Never raises.
    """
    if not isinstance(text, str) or not text:
        return None, False
    text = _normalize(text)
    for match in _FULL.finditer(text):
        value, date_only = _full_date(match)
        if value is not None:
            return value, date_only
    match = _MONTH_DAY.match(text.strip())
    if match:
        return _month_day(match, reference)
    return None, False


def looks_like_date(text: str) -> bool:
    """True when ``text`` is nothing but a date (brackets and a short ``日期：`` label allowed):
    such an element is a list entry's date, not part of its title."""
    if not isinstance(text, str):
        return False
    text = _normalize(text).strip()
    if not text or len(text) > 40:
        return False
    return bool(_ONLY_FULL.match(text) or _MONTH_DAY.match(text))
