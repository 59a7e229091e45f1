"""An inbox's business hours: whether a moment is within them, and the admin's text format.

Stored on the inbox (models/inboxes.py): `time_zone` (IANA name), `business_hours` as
{"mon": [["09:00", "17:00"]], ...} (None or {}: no hours set, always within hours) and
`holidays` as "YYYY-MM-DD" dates, each outside hours all day in the inbox's zone.

The text an admin types, one line per day or run of days, then its spans:

    mon-fri 09:00-17:00
    sat 10:00-13:00, 14:00-16:00
    sun,wed 18:00-24:00

- days: `mon` .. `sun`, a range `mon-fri` (never wrapping past Sunday), or several of them
  joined by commas without spaces (`mon,wed`); a day on two lines gets both lines' spans;
- spans: `HH:MM-HH:MM`, comma-separated, 24-hour local time in the inbox's zone, from the
  start included to the end excluded; `24:00` ends a span at midnight, and no span crosses
  midnight (write `fri 22:00-24:00` and `sat 00:00-02:00`);
- a day not listed is closed; blank lines and `#` comments are skipped; empty text means no
  hours set.

Holidays are dates `YYYY-MM-DD`, separated by spaces, commas or lines.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class HoursError(ValueError):
    """Business hours, a time zone or a holiday that cannot be used; says what to fix."""


def within_hours(inbox, moment: datetime) -> bool:
    """Whether `moment` (aware; naive is taken as UTC) falls in the inbox's business hours."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(_zone(inbox.time_zone))
    if local.date().isoformat() in set(inbox.holidays or ()):
        return False
    hours = inbox.business_hours
    if not hours:
        return True
    now = local.hour * 60 + local.minute
    spans = hours.get(DAYS[local.weekday()]) or []
    return any(_minutes(start) <= now < _minutes(end) for start, end in spans)


def _zone(name: str | None) -> ZoneInfo:
    """The inbox's zone; UTC when unset or no longer known to this machine (a delivery is
    never refused for it; the settings form refuses unknown names: check_time_zone)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def check_time_zone(name: str) -> str:
    """The IANA zone name, trimmed; HoursError when this machine does not know it."""
    name = (name or "").strip()
    try:
        if name and "\\" not in name and ".." not in name:
            ZoneInfo(name)
            return name
    except (ZoneInfoNotFoundError, ValueError):
        pass
    raise HoursError(
        f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin or America/New_York."
    )


def parse_hours(text: str) -> dict[str, list[list[str]]]:
    """The admin's text (module docstring) as the stored dict; {} for empty text."""
    hours: dict[str, list[list[str]]] = {}
    for number, raw in enumerate((text or "").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"Line {number} ({line!r})"
        days_text, _, spans_text = line.partition(" ")
        if not spans_text.strip():
            raise HoursError(f"{where}: add the hours after the days, e.g. 'mon-fri 09:00-17:00'.")
        spans = [_span(part.strip(), where) for part in spans_text.split(",")]
        for day in _days(days_text.lower(), where):
            hours.setdefault(day, []).extend(spans)
    return check_hours(hours)


def check_hours(hours: dict) -> dict[str, list[list[str]]]:
    """A stored-shape dict (from the text or the API) checked and put in order: days in week
    order, spans sorted by start, times as HH:MM; HoursError names the first problem."""
    if not isinstance(hours, dict):
        raise HoursError('Business hours map days to spans, e.g. {"mon": [["09:00", "17:00"]]}.')
    checked: dict[str, list[list[str]]] = {}
    for day, spans in hours.items():
        if day not in DAYS:
            raise HoursError(f"Unknown day {day!r}: use {', '.join(DAYS)}.")
        if not isinstance(spans, list):
            raise HoursError(f"{day}: give a list of [start, end] spans.")
        cleaned = []
        for span in spans:
            if not (isinstance(span, list | tuple) and len(span) == 2):
                raise HoursError(f"{day}: each span is [start, end], e.g. ['09:00', '17:00'].")
            cleaned.append(_span(f"{span[0]}-{span[1]}", day))
        cleaned.sort(key=lambda span: _minutes(span[0]))
        for earlier, later in zip(cleaned, cleaned[1:], strict=False):
            if _minutes(later[0]) < _minutes(earlier[1]):
                raise HoursError(
                    f"{day}: {earlier[0]}-{earlier[1]} and {later[0]}-{later[1]} overlap; "
                    "make one end before the other starts."
                )
        if cleaned:
            checked[day] = cleaned
    return {day: checked[day] for day in DAYS if day in checked}


def format_hours(hours: dict | None) -> str:
    """The stored dict as the admin's text: runs of days with the same spans on one line."""
    if not hours:
        return ""
    lines: list[str] = []
    index = 0
    while index < len(DAYS):
        spans = hours.get(DAYS[index])
        if not spans:
            index += 1
            continue
        end = index
        while end + 1 < len(DAYS) and hours.get(DAYS[end + 1]) == spans:
            end += 1
        days = DAYS[index] if end == index else f"{DAYS[index]}-{DAYS[end]}"
        lines.append(f"{days} " + ", ".join(f"{start}-{stop}" for start, stop in spans))
        index = end + 1
    return "\n".join(lines)


def parse_holidays(text: str) -> list[str]:
    """Dates `YYYY-MM-DD` separated by spaces, commas or lines; sorted, each once."""
    found = set()
    for word in re.split(r"[\s,;]+", text or ""):
        if not word:
            continue
        try:
            if not _DATE.match(word):
                raise ValueError
            date.fromisoformat(word)
        except ValueError:
            raise HoursError(
                f"Holiday {word!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-12-25."
            ) from None
        found.add(word)
    return sorted(found)


def format_holidays(holidays: list[str] | None) -> str:
    return "\n".join(holidays or [])


def _days(text: str, where: str) -> list[str]:
    days: list[str] = []
    for part in text.split(","):
        first, dash, last = part.partition("-")
        for name in (first, last) if dash else (first,):
            if name not in DAYS:
                raise HoursError(f"{where}: unknown day {name!r}; use {', '.join(DAYS)}.")
        start, stop = DAYS.index(first), DAYS.index(last if dash else first)
        if stop < start:
            raise HoursError(
                f"{where}: {part!r} runs backwards; a range goes from Monday towards Sunday, "
                f"e.g. 'fri-sun' or 'sun,mon'."
            )
        days.extend(DAYS[start : stop + 1])
    return days


def _span(text: str, where: str) -> list[str]:
    start_text, dash, end_text = text.partition("-")
    if not dash:
        raise HoursError(f"{where}: {text!r} is not a span; write it as HH:MM-HH:MM.")
    start, end = _time(start_text, where), _time(end_text, where, end=True)
    if _minutes(end) <= _minutes(start):
        raise HoursError(
            f"{where}: {start}-{end} ends before it starts; the end must be after the start "
            "(a span cannot cross midnight: split it at 24:00)."
        )
    return [start, end]


def _time(text: str, where: str, end: bool = False) -> str:
    match = _TIME.match(text.strip())
    hour, minute = (int(match.group(1)), int(match.group(2))) if match else (99, 99)
    if (hour, minute) == (24, 0) and end:
        return "24:00"
    if hour > 23 or minute > 59:
        raise HoursError(
            f"{where}: {text.strip()!r} is not a time; use 24-hour HH:MM, e.g. 09:00 or 17:30."
        )
    return f"{hour:02d}:{minute:02d}"


def _minutes(value: str) -> int:
    hour, minute = value.split(":")
    return int(hour) * 60 + int(minute)
