"""A reminder whose sender died mid-send (left "sending") is sent by the next run once the
claim is older than REMINDER_SENDING_STALE_MINUTES, exactly once; a claim younger than that
belongs to a live sender and is left alone; two runs at once send it once (issue 10,
item 9)."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.utils import timezone

from core.roles import Role
from followup import services, tasks
from followup.models import Reminder

from ..conftest import make_user
from .factories import treated_patient

LEAD = 7  # the protocol's reminder_lead_days
LIMIT = timedelta(minutes=settings.REMINDER_SENDING_STALE_MINUTES)


@pytest.fixture
def cora(site):
    return make_user("cora", Role.COORDINATOR, site, email="cora@example.org")


@pytest.fixture
def soon(site, andrologist):
    """M4's window opens in LEAD days: its reminder is due today."""
    return treated_patient(site, andrologist, procedure_days_ago=106 - LEAD)


def left_sending(patient, *, claimed_ago: timedelta | None) -> Reminder:
    """The row as a sender leaves it when it dies between its claim and the e-mail."""
    return Reminder.objects.create(
        visit=patient.visits.get(definition__code="M4"),
        kind=Reminder.Kind.WINDOW_OPENS_SOON,
        status=Reminder.Status.SENDING,
        attempts=1,
        due_on=timezone.localdate(),
        claimed_at=None if claimed_ago is None else timezone.now() - claimed_ago,
    )


def dispatch():
    return services.reminders_dispatch(today=timezone.localdate())


def test_a_reminder_abandoned_mid_send_is_sent_once_by_the_next_run(soon, cora):
    reminder = left_sending(soon, claimed_ago=LIMIT + timedelta(minutes=1))

    first, second = dispatch(), dispatch()

    assert (first.sent, second.sent) == (1, 0)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["cora@example.org"]
    assert soon.study_id in mail.outbox[0].subject
    reminder.refresh_from_db()
    assert (reminder.status, reminder.attempts) == (Reminder.Status.SENT, 2)
    assert reminder.claimed_at > timezone.now() - timedelta(minutes=1)


def test_a_fresh_claim_is_left_to_its_sender_until_the_limit(soon, cora, time_machine):
    reminder = left_sending(soon, claimed_ago=LIMIT - timedelta(minutes=1))
    claimed_at = reminder.claimed_at

    assert dispatch().sent == 0
    assert mail.outbox == []
    reminder.refresh_from_db()
    assert (reminder.status, reminder.attempts, reminder.claimed_at) == (
        Reminder.Status.SENDING,
        1,
        claimed_at,
    )

    time_machine.move_to(timezone.now() + timedelta(minutes=2), tick=True)  # past the limit
    assert dispatch().sent == 1
    assert len(mail.outbox) == 1


def test_a_row_left_sending_before_claims_were_timed_counts_from_its_last_save(soon, cora):
    reminder = left_sending(soon, claimed_ago=None)
    # A QuerySet.update() does not touch updated_at: the row was last saved that long ago.
    Reminder.objects.filter(pk=reminder.pk).update(
        updated_at=timezone.now() - LIMIT - timedelta(minutes=1)
    )
    assert dispatch().sent == 1
    assert len(mail.outbox) == 1


def test_a_sender_whose_claim_was_taken_over_does_not_overwrite_the_result(
    soon, cora, monkeypatch, time_machine
):
    """A sender so slow that its claim came to count as abandoned: another run took the row
    over and sent it; the slow one, failing at last, leaves the row as that run wrote it."""
    deliver = services.send_mail
    calls = []

    def send_mail(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:  # the slow sender, while it waits on the mail server
            time_machine.move_to(timezone.now() + LIMIT + timedelta(minutes=1), tick=True)
            assert dispatch().sent == 1  # another run
            raise ConnectionError("The mail server went away")
        return deliver(*args, **kwargs)

    monkeypatch.setattr(services, "send_mail", send_mail)
    assert dispatch().failed == 1  # the slow run reports its own failure...
    reminder = Reminder.objects.get()
    assert (reminder.status, reminder.attempts, reminder.error) == (Reminder.Status.SENT, 2, "")
    assert len(mail.outbox) == 1  # ...but the reminder was sent, once


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_an_abandoned_reminder_once(soon, cora, monkeypatch):
    reminder = left_sending(soon, claimed_ago=LIMIT + timedelta(minutes=1))
    # Both runs have found the reminder due before either claims it.
    both_found_it = threading.Barrier(2, timeout=30)
    found_due = services.reminders_due

    def reminders_due(*, today):
        due = found_due(today=today)
        both_found_it.wait()
        return due

    monkeypatch.setattr(services, "reminders_due", reminders_due)
    results, errors = [], []

    def run():
        try:  # each thread has its own database connection
            results.append(dispatch())
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=60)

    assert errors == []
    assert sorted((r.sent, r.skipped) for r in results) == [(0, 1), (1, 0)]
    assert len(mail.outbox) == 1
    reminder.refresh_from_db()
    assert (reminder.status, reminder.attempts) == (Reminder.Status.SENT, 2)


def test_the_job_looks_again_once_a_claim_it_found_would_be_abandoned(soon, cora, monkeypatch):
    """The job was redelivered at once after its worker died mid-send: the claim is still
    fresh, so the job runs once more when it would count as abandoned, not the next day."""
    left_sending(soon, claimed_ago=timedelta(minutes=5))
    scheduled = []
    monkeypatch.setattr(
        tasks.send_visit_reminders,
        "apply_async",
        lambda **options: scheduled.append(options),
    )
    today = timezone.localdate().isoformat()

    assert tasks.send_visit_reminders(today) == {"sent": 0, "failed": 0, "skipped": 0}
    [again] = scheduled
    assert again["args"] == [today] and again["kwargs"] == {"recheck": False}
    expected = (LIMIT - timedelta(minutes=5) + timedelta(minutes=1)).total_seconds()
    assert expected - 5 < again["countdown"] <= expected

    tasks.send_visit_reminders(today, recheck=False)  # that run schedules no other
    assert len(scheduled) == 1


def test_the_job_schedules_nothing_when_no_reminder_is_held(soon, cora, monkeypatch):
    scheduled = []
    monkeypatch.setattr(
        tasks.send_visit_reminders, "apply_async", lambda **options: scheduled.append(options)
    )
    assert tasks.send_visit_reminders(timezone.localdate().isoformat())["sent"] == 1
    assert scheduled == []


def test_a_mail_server_that_never_answers_fails_the_reminder_in_seconds(soon, cora, settings):
    """A sender must not hang on a dead mail server until the task's time limit (its claim
    would then look abandoned while it still runs): EMAIL_TIMEOUT, then FAILED and retried."""
    import socket
    import time

    assert settings.EMAIL_TIMEOUT == 30  # the deployed default (config/settings/base.py)
    mute = socket.socket()  # accepts the connection, never says a word
    mute.bind(("127.0.0.1", 0))
    mute.listen(4)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", mute.getsockname()[1]
    settings.EMAIL_TIMEOUT = 1
    try:
        started = time.monotonic()
        result = dispatch()
        took = time.monotonic() - started
    finally:
        mute.close()
    assert result.sent == 0 and took < 10
    reminder = Reminder.objects.get()
    assert reminder.status == Reminder.Status.FAILED and "timed out" in reminder.error
