"""Visit reminders: to the coordinators of the patient's site, before a window opens and when
a visit becomes overdue; one row per reminder, so running the job twice sends nothing twice;
none for withdrawn or finished patients. The daily job runs on a real worker through Redis."""

from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from followup import services
from followup.models import Reminder
from followup.tasks import send_visit_reminders
from patients.services import consent_withdraw

from ..conftest import make_user
from ..factories import save_crf
from .factories import save, treated_patient

TODAY = timezone.localdate
LEAD = 7  # the protocol's reminder_lead_days


def _days(n):
    return timedelta(days=n)


@pytest.fixture
def cora(site):
    return make_user("cora", Role.COORDINATOR, site, email="cora@example.org")


@pytest.fixture
def soon(site, andrologist):
    """M4's window (P+106) opens in exactly LEAD days."""
    return treated_patient(site, andrologist, procedure_days_ago=106 - LEAD)


@pytest.fixture
def overdue(site, andrologist):
    """M4's window closed 6 days ago (P+134); M6's opens in 26 days."""
    return treated_patient(site, andrologist, procedure_days_ago=140)


def test_coordinators_are_reminded_before_a_window_opens(soon, cora, other_site):
    make_user("otto", Role.COORDINATOR, other_site, email="otto@example.org")
    result = services.reminders_dispatch(today=TODAY())
    assert (result.sent, result.failed) == (1, 0)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["cora@example.org"]  # not the other site's coordinator
    opens = (TODAY() + _days(LEAD)).strftime("%d %b %Y")
    assert email.subject == f"[NOA-MSC] {soon.study_id} M4: window opens {opens}"
    assert "Ahmed" not in email.body and "Test Patient" not in email.body  # no identifiers
    reminder = Reminder.objects.get()
    assert (reminder.kind, reminder.status, reminder.recipients) == (
        "window_opens_soon",
        "sent",
        "cora@example.org",
    )


def test_no_reminder_the_day_before_the_lead_time(site, andrologist, cora):
    treated_patient(site, andrologist, procedure_days_ago=106 - LEAD - 1)
    assert services.reminders_dispatch(today=TODAY()).sent == 0
    assert mail.outbox == []


def test_running_the_job_twice_sends_one_email(soon, cora):
    services.reminders_dispatch(today=TODAY())
    second = services.reminders_dispatch(today=TODAY())
    third = services.reminders_dispatch(today=TODAY() + _days(1))  # still before the window
    assert (second.sent, third.sent) == (0, 0)
    assert len(mail.outbox) == 1
    assert Reminder.objects.count() == 1


def test_a_claimed_reminder_is_not_sent_again(soon, cora):
    """Another run holds the row (status sending): this run leaves it alone."""
    visit = soon.visits.get(definition__code="M4")
    Reminder.objects.create(visit=visit, kind="window_opens_soon", status="sending", due_on=TODAY())
    assert services.reminders_dispatch(today=TODAY()).sent == 0
    assert mail.outbox == []


def test_an_overdue_visit_gets_one_overdue_reminder(overdue, cora):
    assert services.reminders_dispatch(today=TODAY()).sent == 1
    assert services.reminders_dispatch(today=TODAY()).sent == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == f"[NOA-MSC] {overdue.study_id} M4 is overdue"
    assert "its window closed on" in mail.outbox[0].body
    assert Reminder.objects.get().kind == "overdue"


def test_a_done_visit_is_not_overdue(overdue, cora, andrologist):
    m4 = overdue.visits.get(definition__code="M4")
    late = TODAY() - _days(1)
    save("followup_visit", m4, andrologist, on=late)
    save_crf("semen_analysis", m4, andrologist, assessment_date=late)
    save_crf("hormones", m4, andrologist, assessment_date=late)
    assert services.reminders_dispatch(today=TODAY()).sent == 0


def test_withdrawn_patients_get_no_reminder(soon, overdue, andrologist, cora):
    for patient in (soon, overdue):
        consent_withdraw(
            consent=patient.consents.get(),
            withdrawn_on=TODAY(),
            reason="Moved abroad",
            user=andrologist,
        )
    assert services.reminders_dispatch(today=TODAY()).sent == 0
    assert mail.outbox == []


def test_patients_at_the_end_of_the_study_get_no_reminder(soon, overdue, andrologist, cora):
    for patient in (soon, overdue):
        eos = services.end_of_study_visit_open(patient=patient, user=andrologist)
        save("end_of_study", eos, andrologist, on=TODAY())
    assert services.reminders_dispatch(today=TODAY()).sent == 0
    assert mail.outbox == []


def test_a_site_without_a_coordinator_email_fails_visibly_then_succeeds(
    client, soon, coordinator, admin_user
):
    result = services.reminders_dispatch(today=TODAY())
    assert (result.sent, result.failed) == (0, 1)
    reminder = Reminder.objects.get()
    assert reminder.error == "No coordinator with an e-mail address works at site BEN."
    client.force_login(admin_user)
    html = client.get(reverse("followup:reminder-list")).content.decode()
    assert "No coordinator with an e-mail address works at site BEN." in html
    coordinator.email = "carol@example.org"
    coordinator.save()
    assert services.reminders_dispatch(today=TODAY()).sent == 1
    reminder.refresh_from_db()
    assert (reminder.status, reminder.attempts) == ("sent", 2)
    assert len(mail.outbox) == 1


def test_the_reminder_log_shows_the_users_sites_only(client, soon, cora, other_site):
    other = make_user("otto", Role.COORDINATOR, other_site, email="otto@example.org")
    services.reminders_dispatch(today=TODAY())
    client.force_login(cora)
    html = client.get(reverse("followup:reminder-list")).content.decode()
    assert soon.study_id in html and "Window opens soon" in html
    client.force_login(other)
    assert soon.study_id not in client.get(reverse("followup:reminder-list")).content.decode()


def test_the_task_calls_the_service(soon, cora):
    assert send_visit_reminders(TODAY().isoformat()) == {"sent": 1, "failed": 0, "skipped": 0}
    assert len(mail.outbox) == 1


def test_the_daily_job_is_declared_once_in_the_beat_schedule():
    from config.celery_app import app

    entry = settings.CELERY_BEAT_SCHEDULE["send-visit-reminders"]
    assert app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE
    assert entry["task"] == send_visit_reminders.name == "followup.tasks.send_visit_reminders"
    schedule = entry["schedule"]
    assert isinstance(schedule, crontab)
    assert (schedule.hour, schedule.minute) == ({7}, {0})
    assert schedule.day_of_week == set(range(7)) and schedule.day_of_month == set(range(1, 32))


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_reminders_through_redis(site, andrologist, cora):
    from celery.contrib.testing.worker import start_worker

    from config.celery_app import app

    patient = treated_patient(site, andrologist, procedure_days_ago=106 - LEAD)
    assert not app.conf.task_always_eager
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        result = send_visit_reminders.delay(TODAY().isoformat())
        assert result.get(timeout=30) == {"sent": 1, "failed": 0, "skipped": 0}
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["cora@example.org"]
    assert patient.study_id in mail.outbox[0].subject
    assert Reminder.objects.get().status == "sent"
