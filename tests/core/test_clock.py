"""The clock: every test starts at one pinned instant (tests/conftest.py), and the app's own
time rules hold at any instant, in the sites' time zone (Africa/Cairo), at night, at midnight,
at the weekend and across Egypt's daylight-saving changes (2026: clocks go forward at 00:00 on
Friday 24 April, back at 24:00 on Thursday 29 October)."""

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from monitoring.audit_review import AuditReview, out_of_hours_rule
from patients import services
from trial.models import ConsentVersion

from ..audit.factories import audit_row
from ..conftest import clock_instant
from ..factories import save_crf

CAIRO = ZoneInfo("Africa/Cairo")

# Instants chosen where a rule written in UTC, or with a fixed offset, would go wrong.
NIGHT_AFTER_MIDNIGHT = datetime(2026, 11, 29, 22, 30, tzinfo=UTC)  # Mon 30 Nov, 00:30 Cairo
FRIDAY_NOON = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # Fri 27 Nov, 12:00 Cairo
DST_STARTS = datetime(2026, 4, 23, 22, 30, tzinfo=UTC)  # Fri 24 Apr, 01:30 EEST (+3)
DST_ENDS = datetime(2026, 10, 29, 21, 30, tzinfo=UTC)  # Thu 29 Oct, 23:30 EET (+2)
INSTANTS = [NIGHT_AFTER_MIDNIGHT, FRIDAY_NOON, DST_STARTS, DST_ENDS]


def test_every_test_starts_at_the_pinned_instant(request):
    pinned = clock_instant(request.config.getoption("--clock"))
    assert abs(timezone.now() - pinned) < timedelta(seconds=30)
    assert abs(time.time() - pinned.timestamp()) < 30


def test_the_pinned_clock_still_ticks(time_machine):
    """Timeouts, Celery and the browser need time to pass; a test freezes it on purpose."""
    before = timezone.now()
    time.sleep(0.01)
    assert timezone.now() > before
    time_machine.move_to(FRIDAY_NOON, tick=False)
    assert timezone.now() == FRIDAY_NOON == timezone.now()


def test_a_clock_without_a_time_zone_is_refused():
    with pytest.raises(pytest.UsageError):
        clock_instant("2026-11-29T22:30:00")


@pytest.fixture
def instant(request, time_machine):
    """The clock stopped at the parametrised instant, before any other fixture writes data
    (ask for it first)."""
    time_machine.move_to(request.param, tick=False)
    return request.param


at_every_instant = pytest.mark.parametrize(
    "instant", INSTANTS, indirect=True, ids=lambda i: i.isoformat()
)


@at_every_instant
def test_today_is_the_sites_date_not_the_servers(instant):
    assert timezone.localdate() == instant.astimezone(CAIRO).date()


@at_every_instant
def test_a_form_dated_today_in_cairo_is_accepted_and_tomorrow_refused(
    instant, screening_visit, andrologist
):
    """At 00:30 in Cairo the UTC date is still yesterday: "today" is Cairo's."""
    today = instant.astimezone(CAIRO).date()
    with pytest.raises(ValidationError, match="cannot be in the future"):
        save_crf("examination", screening_visit, andrologist, assessment_date=today + timedelta(1))
    assert save_crf("examination", screening_visit, andrologist, assessment_date=today).pk


@at_every_instant
def test_a_consent_signed_a_minute_ago_is_accepted_and_one_a_minute_ahead_refused(
    instant, patient, andrologist, protocol
):
    # A version that took effect today, in Cairo: signing just after local midnight counts.
    version = ConsentVersion.objects.create(
        protocol=protocol, version="9.0", effective_date=instant.astimezone(CAIRO).date()
    )

    def sign(at):
        return services.consent_record(
            patient=patient,
            user=andrologist,
            obtained_by=andrologist,
            consent_version=version,
            signed_at=at,
        )

    with pytest.raises(ValidationError, match="cannot be in the future"):
        sign(instant + timedelta(minutes=1))
    signed_on_the_effective_day = instant - timedelta(minutes=1)
    if signed_on_the_effective_day.astimezone(CAIRO).date() == version.effective_date:
        assert sign(signed_on_the_effective_day).signed_on == version.effective_date
    else:  # 00:00 exactly: a minute ago was the day before the version took effect
        with pytest.raises(ValidationError, match="only took effect"):
            sign(signed_on_the_effective_day)


@pytest.mark.parametrize(
    ("moment", "out_of_hours"),
    [
        # Summer (EEST, +3): 03:30 UTC is 06:30 in Cairo, working hours; a rule that added
        # the winter offset (+2) would call it 05:30, night.
        (datetime(2026, 10, 28, 3, 30, tzinfo=UTC), False),  # Wed 06:30 EEST
        (datetime(2026, 10, 28, 18, 30, tzinfo=UTC), False),  # Wed 21:30 EEST
        (datetime(2026, 10, 28, 19, 30, tzinfo=UTC), True),  # Wed 22:30 EEST
        # The last hour of summer time and the first of winter time: both night.
        (datetime(2026, 10, 29, 20, 30, tzinfo=UTC), True),  # Thu 23:30 EEST
        (datetime(2026, 10, 29, 21, 30, tzinfo=UTC), True),  # Thu 23:30 EET (again)
        # Winter (EET, +2): 03:30 UTC is 05:30 in Cairo, night.
        (datetime(2026, 11, 4, 3, 30, tzinfo=UTC), True),  # Wed 05:30 EET
        (datetime(2026, 11, 4, 4, 30, tzinfo=UTC), False),  # Wed 06:30 EET
        # Friday in Cairo starts on Thursday evening in UTC; Sunday is a working day.
        (datetime(2026, 11, 5, 22, 30, tzinfo=UTC), True),  # Fri 00:30 EET
        (datetime(2026, 11, 8, 8, 0, tzinfo=UTC), False),  # Sun 10:00 EET
        # Clocks go forward at midnight on Friday 24 April: Friday in both offsets.
        (datetime(2026, 4, 23, 21, 30, tzinfo=UTC), True),  # Thu 23:30 EET
        (datetime(2026, 4, 24, 7, 0, tzinfo=UTC), True),  # Fri 10:00 EEST
        (datetime(2026, 4, 26, 3, 30, tzinfo=UTC), False),  # Sun 06:30 EEST
    ],
    ids=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
)
def test_out_of_hours_is_read_in_cairo_time_across_daylight_saving(
    moment, out_of_hours, consented_patient, andrologist, monitor
):
    audit_row(at=moment, user=andrologist, patient=consented_patient, reason="the row")
    review = AuditReview(user=monitor, date_from=date(2026, 4, 1), date_to=date(2026, 11, 30))
    flagged = {e.reason for e in review.out_of_hours}
    assert ("the row" in flagged) is out_of_hours, (moment.astimezone(CAIRO), out_of_hours_rule())
