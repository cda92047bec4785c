"""core.rules: conditional field rules, checked without a form or a request."""

from datetime import date

import pytest

from core.rules import end_date_or_ongoing, is_blank, not_required_if, required_if

START, BEFORE, AFTER = date(2026, 3, 1), date(2026, 2, 1), date(2026, 4, 1)


@pytest.mark.parametrize("value", [None, "", "   ", [], ()])
def test_blank_values(value):
    assert is_blank(value)


@pytest.mark.parametrize("value", [0, False, "x", date(2026, 1, 1), ["a"]])
def test_given_values(value):
    assert not is_blank(value)


def test_required_if_asks_only_when_the_condition_holds():
    assert required_if(True, "", message="Name the route.") == "Name the route."
    assert required_if(True, "oral", message="Name the route.") is None
    assert required_if(False, "", message="Name the route.") is None


def test_not_required_if_refuses_a_value_only_when_the_condition_holds():
    assert not_required_if(True, "x", message="Only for Other.") == "Only for Other."
    assert not_required_if(True, " ", message="Only for Other.") is None
    assert not_required_if(False, "x", message="Only for Other.") is None


def rule(*, end, ongoing, start=START):
    return end_date_or_ongoing(
        start=start, end=end, ongoing=ongoing, what="event", start_word="onset"
    )


@pytest.mark.parametrize(
    ("end", "ongoing", "start", "message"),
    [
        (None, True, START, None),
        (AFTER, False, START, None),
        (START, False, START, None),  # ends the day it began
        (AFTER, False, None, None),  # no start to compare with
        (None, False, START, "Give the end date, or tick ongoing."),
        (AFTER, True, START, "An ongoing event has no end date: clear it or untick ongoing."),
        (BEFORE, False, START, "The end date cannot precede the onset."),
        # Ongoing with an end date is said first, even when that date is also too early.
        (BEFORE, True, START, "An ongoing event has no end date: clear it or untick ongoing."),
    ],
)
def test_the_end_date_or_ongoing_rule(end, ongoing, start, message):
    assert rule(end=end, ongoing=ongoing, start=start) == message


def test_the_messages_name_the_entry_and_its_start():
    assert end_date_or_ongoing(
        start=START, end=BEFORE, ongoing=False, what="medication", start_word="start"
    ) == ("The end date cannot precede the start.")
    assert end_date_or_ongoing(
        start=START, end=AFTER, ongoing=True, what="medication", start_word="start"
    ) == ("An ongoing medication has no end date: clear it or untick ongoing.")
