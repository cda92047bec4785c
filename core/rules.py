"""Conditional field rules for a model's `clean()` (same-row rules), testable without HTTP:
each returns the message for the field, or None when the rule holds (clinicedc's
`required_if` idea, without its form machinery). The caller puts the message under the field
it names: `errors["end_date"] = message`."""

from datetime import date
from typing import Any


def is_blank(value: Any) -> bool:
    """None, an empty or whitespace-only string, an empty list."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or value == [] or value == ()


def required_if(condition: bool, value: Any, *, message: str) -> str | None:
    """`message` when the condition holds and the value is blank."""
    return message if condition and is_blank(value) else None


def not_required_if(condition: bool, value: Any, *, message: str) -> str | None:
    """`message` when the condition holds and a value was given anyway."""
    return message if condition and not is_blank(value) else None


def end_date_or_ongoing(
    *, start: date | None, end: date | None, ongoing: bool, what: str, start_word: str
) -> str | None:
    """The end-date rule of a log entry (an adverse event, a medication): an ongoing entry
    has no end date, a finished one has one, and it does not precede the start. `what` and
    `start_word` name the entry and its start in the messages ("event", "onset")."""
    return (
        not_required_if(
            ongoing,
            end,
            message=f"An ongoing {what} has no end date: clear it or untick ongoing.",
        )
        or required_if(not ongoing, end, message="Give the end date, or tick ongoing.")
        or (
            f"The end date cannot precede the {start_word}."
            if end and start and end < start
            else None
        )
    )
