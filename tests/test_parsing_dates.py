"""parse_date: the date forms VSB templates print."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crawler.parsing import SHANGHAI, parse_date
from crawler.parsing.dates import looks_like_date

REF = datetime(2025, 6, 25, 12, 0, tzinfo=SHANGHAI)


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("text", "expected", "date_only"),
    [
        ("2024-10-24", d(2024, 10, 24), True),
        (" 2026-06-23", d(2026, 6, 23), True),
        ("2024/10/24", d(2024, 10, 24), True),
        ("2024.10.24", d(2024, 10, 24), True),
        ("2024-1-5", d(2024, 1, 5), True),
        ("2024年10月24日", d(2024, 10, 24), True),
        ("2018年01月23日", d(2018, 1, 23), True),
        ("2024-10-24 14:30", d(2024, 10, 24, 14, 30), False),
        ("2024-10-24 14:30:05", d(2024, 10, 24, 14, 30, 5), False),
        ("2024-10-24T08:05", d(2024, 10, 24, 8, 5), False),
        ("2024年10月24日 14:30", d(2024, 10, 24, 14, 30), False),
        ("发布时间：2024-10-24  作者：张三", d(2024, 10, 24), True),
        ("[2024-10-24]", d(2024, 10, 24), True),
        ("２０２４－１０－２４", d(2024, 10, 24), True),  # full-width digits
        ("2024-10-24 25:99", d(2024, 10, 24), True),  # impossible time ignored, date kept
    ],
)
def test_full_dates(text: str, expected: datetime, date_only: bool) -> None:
    assert parse_date(text, REF) == (expected, date_only)


def test_date_only_values_are_midnight_shanghai() -> None:
    value, date_only = parse_date("2024-10-24")
    assert date_only and value is not None
    assert value.utcoffset().total_seconds() == 8 * 3600
    assert value.astimezone(UTC) == datetime(2024, 10, 23, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[10-24]", d(2024, 10, 24)),  # 2025-10-24 would be months after the reference
        ("10-24", d(2024, 10, 24)),
        ("06-20", d(2025, 6, 20)),
        ("06-26", d(2025, 6, 26)),  # one day ahead is tolerated (time zones)
        ("06-27", d(2024, 6, 27)),
        ("10月24日", d(2024, 10, 24)),
        ("【06-01】", d(2025, 6, 1)),
        ("日期：06-01", d(2025, 6, 1)),
    ],
)
def test_month_day_takes_year_from_reference(text: str, expected: datetime) -> None:
    assert parse_date(text, REF) == (expected, True)


def test_month_day_across_new_year() -> None:
    january = datetime(2025, 1, 3, 9, 0, tzinfo=SHANGHAI)
    assert parse_date("12-30", january)[0] == d(2024, 12, 30)
    assert parse_date("01-02", january)[0] == d(2025, 1, 2)
    new_years_eve = datetime(2024, 12, 31, 20, 0, tzinfo=SHANGHAI)
    assert parse_date("01-01", new_years_eve)[0] == d(2025, 1, 1)


def test_month_day_reference_naive_or_other_zone_and_leap_day() -> None:
    assert parse_date("10-24", datetime(2025, 6, 25))[0] == d(2024, 10, 24)
    assert parse_date("06-26", datetime(2025, 6, 25, 20, 0, tzinfo=UTC))[0] == d(2025, 6, 26)
    assert parse_date("02-29", REF)[0] == d(2024, 2, 29)


def test_month_day_with_time() -> None:
    assert parse_date("06-20 09:15", REF) == (d(2025, 6, 20, 9, 15), False)


def test_month_day_default_reference_is_now() -> None:
    value, date_only = parse_date("01-01")
    assert value is not None and date_only
    now = datetime.now(SHANGHAI)
    assert now - timedelta(days=366) <= value <= now + timedelta(days=1)


@pytest.mark.parametrize(
    "text",
    ["2024-13-45", "2024-02-30", "13-45", "", "   ", "no date here", "0431-84848857", "1850-01-01",
     "10月16日下午，学校党校举行开班仪式", "2024年10月", "12345-10-24"],
)
def test_not_dates(text: str) -> None:
    assert parse_date(text, REF) == (None, False)


def test_first_valid_date_wins() -> None:
    assert parse_date("2024-13-45 then 2024-10-24", REF) == (d(2024, 10, 24), True)


def test_never_raises_on_odd_input() -> None:
    assert parse_date(None, REF) == (None, False)  # type: ignore[arg-type]
    assert parse_date("10-24", datetime.min) == (None, False)  # no year in the supported range
    assert parse_date("10-24", datetime.max) == (None, False)
    assert parse_date("\ud800 2024-10-24", REF) == (d(2024, 10, 24), True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2024-10-24", True), ("[10-24]", True), (" 2026-06-23", True), ("发布时间：2024-10-24", True),
     ("2024年10月24日", True), ("党校举办2024年秋季学期培训", False), ("10月16日下午，学校", False), ("", False)],
)
def test_looks_like_date(text: str, expected: bool) -> None:
    assert looks_like_date(text) is expected
