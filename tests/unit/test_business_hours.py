"""Business hours: within or outside, holidays, time zones either side of UTC, the DST
changes, and every mistake an admin can type, each refused with what to fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.business_hours import (
    HoursError,
    check_hours,
    check_time_zone,
    format_hours,
    parse_holidays,
    parse_hours,
    within_hours,
)

OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def inbox(hours=OFFICE, zone="UTC", holidays=()):
    return SimpleNamespace(business_hours=hours, time_zone=zone, holidays=list(holidays))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_within_and_outside_hours_start_included_end_excluded():
    office = inbox()
    assert within_hours(office, utc(2026, 11, 30, 9, 0))  # a Monday
    assert within_hours(office, utc(2026, 11, 30, 16, 59))
    assert not within_hours(office, utc(2026, 11, 30, 17, 0))
    assert not within_hours(office, utc(2026, 11, 30, 8, 59))
    assert not within_hours(office, utc(2026, 11, 28, 12, 0))  # Saturday: not listed, closed


def test_no_hours_set_is_always_within_hours():
    assert within_hours(inbox(hours=None), utc(2026, 11, 28, 3, 0))
    assert within_hours(inbox(hours={}), utc(2026, 11, 28, 3, 0))


def test_a_naive_moment_is_taken_as_utc():
    assert within_hours(inbox(), datetime(2026, 11, 30, 9, 0))


def test_a_holiday_is_outside_hours_all_day_in_the_inbox_zone():
    christmas = inbox(zone="Pacific/Auckland", holidays=["2026-12-25"])
    # 2026-12-24 20:00 UTC is 09:00 on Friday the 25th in Auckland (UTC+13 in summer).
    assert not within_hours(christmas, utc(2026, 12, 24, 20, 0))
    # The 24th, a Thursday, 09:00 in Auckland: an ordinary day.
    assert within_hours(christmas, utc(2026, 12, 23, 20, 0))
    assert not within_hours(inbox(hours=None, holidays=["2026-12-25"]), utc(2026, 12, 25, 12))


def test_a_zone_east_of_utc():
    tokyo = inbox(zone="Asia/Tokyo")  # UTC+9, no DST
    assert within_hours(tokyo, utc(2026, 11, 30, 0, 0))  # Monday 09:00 in Tokyo
    assert not within_hours(tokyo, utc(2026, 11, 30, 8, 0))  # 17:00 there
    # Sunday 23:30 UTC is already Monday 08:30 in Tokyo; half an hour later it is open.
    assert not within_hours(tokyo, utc(2026, 11, 29, 23, 30))
    assert within_hours(tokyo, utc(2026, 11, 30, 0, 30))


def test_a_zone_west_of_utc():
    new_york = inbox(zone="America/New_York")  # UTC-5 in winter
    assert within_hours(new_york, utc(2026, 11, 30, 14, 0))  # 09:00 Monday there
    assert not within_hours(new_york, utc(2026, 11, 30, 13, 59))
    # Saturday 01:00 UTC is still Friday 20:00 in New York: closed; Friday 16:00 there is open.
    assert not within_hours(new_york, utc(2026, 11, 28, 1, 0))
    assert within_hours(new_york, utc(2026, 11, 27, 21, 0))


@pytest.mark.parametrize(
    ("opens_utc", "label"),
    [
        # Europe/Berlin: CET (UTC+1) until the last Sunday of March (2026-03-29), CEST (UTC+2)
        # until the last Sunday of October (2026-10-25).
        (utc(2026, 3, 27, 8, 0), "Friday before the spring change: 09:00 is 08:00 UTC"),
        (utc(2026, 3, 30, 7, 0), "Monday after it: 09:00 is 07:00 UTC"),
        (utc(2026, 10, 23, 7, 0), "Friday before the autumn change: 09:00 is 07:00 UTC"),
        (utc(2026, 10, 26, 8, 0), "Monday after it: 09:00 is 08:00 UTC again"),
    ],
)
def test_berlin_opens_at_nine_local_across_both_dst_changes(opens_utc, label):
    berlin = inbox(zone="Europe/Berlin")
    assert within_hours(berlin, opens_utc), label
    assert not within_hours(berlin, opens_utc - timedelta(minutes=1)), label


def test_dst_change_day_itself_counts_local_time():
    sunday = inbox(hours={"sun": [["01:00", "04:00"]]}, zone="Europe/Berlin")
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST. 00:30 UTC = 01:30 CET; 01:30 UTC = 03:30 CEST.
    assert within_hours(sunday, utc(2026, 3, 29, 0, 30))
    assert within_hours(sunday, utc(2026, 3, 29, 1, 30))
    assert not within_hours(sunday, utc(2026, 3, 29, 2, 0))  # 04:00 CEST


def test_an_unknown_stored_zone_falls_back_to_utc_rather_than_failing_a_delivery():
    assert within_hours(inbox(zone="Mars/Olympus"), utc(2026, 11, 30, 9, 0))


def test_parse_the_text_format():
    hours = parse_hours(
        """
        # the office
        mon-fri 09:00-17:00
        sat 14:00-16:00, 10:00-13:00
        sun,wed 18:00-24:00
        """
    )
    assert hours == {
        "mon": [["09:00", "17:00"]],
        "tue": [["09:00", "17:00"]],
        "wed": [["09:00", "17:00"], ["18:00", "24:00"]],
        "thu": [["09:00", "17:00"]],
        "fri": [["09:00", "17:00"]],
        "sat": [["10:00", "13:00"], ["14:00", "16:00"]],
        "sun": [["18:00", "24:00"]],
    }
    assert parse_hours("MON 9:00-17:30") == {"mon": [["09:00", "17:30"]]}
    assert parse_hours("  \n# nothing\n") == {}
    assert within_hours(inbox(hours=hours), utc(2026, 11, 29, 23, 59))  # Sunday until 24:00


def test_format_groups_runs_of_days_and_reads_back_the_same():
    hours = parse_hours("mon-fri 09:00-17:00\nsat 10:00-13:00, 14:00-16:00\nsun 10:00-12:00")
    text = format_hours(hours)
    assert text == "mon-fri 09:00-17:00\nsat 10:00-13:00, 14:00-16:00\nsun 10:00-12:00"
    assert parse_hours(text) == hours
    assert format_hours({"mon": [["09:00", "12:00"]], "wed": [["09:00", "12:00"]]}) == (
        "mon 09:00-12:00\nwed 09:00-12:00"
    )
    assert format_hours(None) == ""


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("mon-fry 09:00-17:00", "unknown day 'fry'"),
        ("monday 09:00-17:00", "unknown day 'monday'"),
        ("fri-mon 09:00-17:00", "runs backwards"),
        ("mon", "add the hours after the days"),
        ("mon 9-17", "'9' is not a time"),
        ("mon 09:00-25:00", "'25:00' is not a time"),
        ("mon 09:60-17:00", "'09:60' is not a time"),
        ("mon 24:00-24:00", "'24:00' is not a time"),
        ("mon 09:00", "is not a span"),
        ("mon 17:00-09:00", "the end must be after the start"),
        ("mon 09:00-09:00", "the end must be after the start"),
        ("mon 22:00-02:00", "cannot cross midnight"),
        ("mon 09:00-13:00, 12:00-17:00", "09:00-13:00 and 12:00-17:00 overlap"),
        ("mon-fri 09:00-17:00\nwed 16:00-18:00", "wed: 09:00-17:00 and 16:00-18:00 overlap"),
    ],
)
def test_each_mistake_is_refused_with_what_to_fix(text, says):
    with pytest.raises(HoursError) as refused:
        parse_hours(text)
    assert says in str(refused.value)


def test_touching_spans_are_not_an_overlap():
    assert parse_hours("mon 09:00-12:00, 12:00-17:00") == {
        "mon": [["09:00", "12:00"], ["12:00", "17:00"]]
    }


def test_the_stored_shape_is_checked_too():
    assert check_hours({"tue": [["9:00", "10:00"]], "mon": []}) == {"tue": [["09:00", "10:00"]]}
    for bad, says in (
        ({"funday": [["09:00", "10:00"]]}, "Unknown day 'funday'"),
        ({"mon": "09:00-10:00"}, "give a list"),
        ({"mon": [["09:00"]]}, "each span is [start, end]"),
        ({"mon": [["10:00", "09:00"]]}, "the end must be after the start"),
        ([], "map days to spans"),
    ):
        with pytest.raises(HoursError) as refused:
            check_hours(bad)
        assert says in str(refused.value)


def test_time_zones_are_checked():
    assert check_time_zone(" Europe/Berlin ") == "Europe/Berlin"
    for bad in ("Europe/Atlantis", "", "../etc/passwd", "not a zone"):
        with pytest.raises(HoursError) as refused:
            check_time_zone(bad)
        assert "Unknown time zone" in str(refused.value)
        assert "Europe/Berlin" in str(refused.value)  # an example of what works


def test_holidays_parse_and_refuse_bad_dates():
    assert parse_holidays("2026-12-25, 2026-12-24\n2026-12-25  2027-01-01") == [
        "2026-12-24",
        "2026-12-25",
        "2027-01-01",
    ]
    assert parse_holidays("") == []
    for bad in ("2026-02-30", "25.12.2026", "2026-1-1", "christmas"):
        with pytest.raises(HoursError) as refused:
            parse_holidays(f"2026-12-25 {bad}")
        assert f"Holiday {bad!r} is not a date" in str(refused.value)
        assert "YYYY-MM-DD" in str(refused.value)
