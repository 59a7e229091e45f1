"""The settings' Business hours tab: the inbox's time zone, weekly hours and holidays
(services/business_hours.py reads and writes the text), and its auto-acknowledgement."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, ValidationError

from blueprints.form_fields import strip
from services.timezones import is_zone, zone_names

WINDOW_MAX = 43_200  # 30 days, in minutes


def _canonical_zone(value: str | None) -> str:
    """What was typed, trimmed; "europe/berlin" is Europe/Berlin (as on the profile)."""
    value = (value or "").strip()
    by_lower = {name.lower(): name for name in zone_names()}
    return by_lower.get(value.lower().replace(" ", "_"), value)


class HoursForm(FlaskForm):
    time_zone = StringField(
        "Time zone",
        description="The zone the hours are in. Type a city or region, e.g. Berlin or "
        "America/New_York, and pick a zone.",
        filters=[_canonical_zone],
    )
    hours = TextAreaField(
        "Weekly hours",
        description="One line per day or range of days, e.g. “mon-fri 09:00-17:00” or "
        "“sat 10:00-13:00, 14:00-16:00”. Days not listed are closed. Leave empty for no "
        "business hours: every email then arrives within hours.",
        filters=[strip],
    )
    holidays = TextAreaField(
        "Holidays",
        description="Closed all day: one date per line, as YYYY-MM-DD, e.g. 2026-12-25.",
        filters=[strip],
    )
    ack_enabled = BooleanField("Send an auto-acknowledgement when a new conversation starts")
    ack_outside_hours_only = BooleanField("Only outside business hours")
    ack_subject = StringField(
        "Subject",
        description="Leave empty to answer with “Re: ” and the customer's subject.",
        validators=[Length(max=255, message="Keep the subject under 255 characters.")],
        filters=[strip],
    )
    ack_body = TextAreaField(
        "Message",
        description="You can use {{conversation.number}}, {{contact.name}} and {{inbox.name}}.",
        validators=[Length(max=10_000, message="Keep the message under 10,000 characters.")],
        filters=[strip],
    )
    ack_window = IntegerField(
        "At most one per sender every (minutes)",
        description="Guards against mail loops and floods: 1440 is once a day.",
        validators=[
            InputRequired("Give the window in minutes, from 1 to 43200."),
            NumberRange(1, WINDOW_MAX, "Give the window in minutes, from 1 to 43200 (30 days)."),
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.zones = zone_names()
        self.parsed_hours: dict | None = None
        self.parsed_holidays: list[str] = []

    def validate_time_zone(self, field) -> None:
        if not is_zone(field.data):
            raise ValidationError(
                f"“{field.data[:64]}” is not a time zone this server knows; pick one from the list."
            )

    def validate_hours(self, field) -> None:
        from services.business_hours import HoursError, parse_hours

        if not field.data:
            self.parsed_hours = None
            return
        try:
            self.parsed_hours = parse_hours(field.data)
        except HoursError as exc:
            raise ValidationError(str(exc)) from None

    def validate_holidays(self, field) -> None:
        from services.business_hours import HoursError, parse_holidays

        try:
            self.parsed_holidays = parse_holidays(field.data) if field.data else []
        except HoursError as exc:
            raise ValidationError(str(exc)) from None

    def validate_ack_body(self, field) -> None:
        if self.ack_enabled.data and not field.data:
            raise ValidationError(
                "Write the message to send, or turn the auto-acknowledgement off."
            )

    def validate_ack_outside_hours_only(self, field) -> None:
        if self.ack_enabled.data and field.data and not self.hours.data:
            raise ValidationError(
                "Set the weekly hours above first, or untick this: without business hours "
                "every email arrives within them."
            )

    def acknowledgement(self) -> dict:
        return {
            "enabled": self.ack_enabled.data,
            "outside_hours_only": self.ack_outside_hours_only.data,
            "subject": self.ack_subject.data,
            "body": self.ack_body.data,
            "window_minutes": self.ack_window.data,
        }

    def error_count(self) -> int:
        return sum(1 for field in self if field.errors)
