"""core.jobs.JobClaim: one claim rule (a conditional UPDATE; a claim older than N seconds
may be taken over) for the PDF jobs and the visit reminders."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from core.jobs import JobClaim
from core.roles import Role
from exports import services as export_services
from exports.models import PdfJob
from followup import services as followup_services
from followup.models import REMINDER_CLAIM, Reminder

from ..conftest import make_user
from ..followup.factories import treated_patient

T0 = datetime(2026, 3, 11, 8, 0, tzinfo=UTC)
RULE = JobClaim(
    model=Reminder,
    free=("pending", "failed"),
    held="sending",
    token="claimed_at",
    alive=("claimed_at", "updated_at"),
    stale_after=lambda: timedelta(minutes=15),
)


def test_a_claim_is_stale_once_its_last_sign_of_life_is_older_than_the_limit():
    fresh = {"claimed_at": T0, "updated_at": T0 - timedelta(days=1)}
    assert RULE.stale_at(fresh) == T0 + timedelta(minutes=15)
    assert not RULE.is_stale(fresh, now=T0 + timedelta(minutes=15))
    assert RULE.is_stale(fresh, now=T0 + timedelta(minutes=15, seconds=1))
    # Without the first sign of life, the next one counts; without any, never stale.
    assert RULE.stale_at({"claimed_at": None, "updated_at": T0}) == T0 + timedelta(minutes=15)
    assert RULE.stale_at({"claimed_at": None, "updated_at": None}) is None
    assert not RULE.is_stale({"claimed_at": None, "updated_at": None}, now=T0 + timedelta(days=9))


def test_the_claimable_rows_are_the_free_ones_and_the_stale_held_ones():
    q = str(RULE.claimable(now=T0))
    assert "'status__in', ['pending', 'failed']" in q and "'status', 'sending'" in q
    assert "claimed_at__lt" in q and "updated_at__lt" in q
    assert "sending" not in str(RULE.claimable(now=T0, take_stale=False))


# ---- reminders: a sender killed after its claim --------------------------------------------

LEAD = 7  # the protocol's reminder_lead_days
LIMIT = timedelta(minutes=settings.REMINDER_SENDING_STALE_MINUTES)


@pytest.fixture
def cora(site):
    return make_user("cora", Role.COORDINATOR, site, email="cora@example.org")


@pytest.fixture
def soon(site, andrologist):
    """M4's window opens in LEAD days: its reminder is due today."""
    return treated_patient(site, andrologist, procedure_days_ago=106 - LEAD)


class WorkerKilled(BaseException):
    """What a killed worker leaves: nothing after the claim runs (not an Exception, so the
    sender's own error handling does not record it)."""


def dispatch():
    return followup_services.reminders_dispatch(today=timezone.localdate())


def test_a_reminder_claimed_by_a_worker_that_died_is_taken_over_once_stale(
    soon, cora, monkeypatch, time_machine
):
    def killed(*args, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(followup_services, "send_mail", killed)
    with pytest.raises(WorkerKilled):
        dispatch()
    monkeypatch.undo()
    reminder = Reminder.objects.get()
    assert (reminder.status, reminder.attempts) == (Reminder.Status.SENDING, 1)

    # A fresh claim is its sender's: the next run leaves it alone.
    assert dispatch().sent == 0
    assert mail.outbox == []
    assert not REMINDER_CLAIM.claim(pk=reminder.pk, now=timezone.now())
    claimed_at = reminder.claimed_at
    reminder.refresh_from_db()
    assert (reminder.status, reminder.attempts, reminder.claimed_at) == ("sending", 1, claimed_at)

    # Past the limit the worker is taken for dead: the next run takes the reminder over.
    time_machine.move_to(timezone.now() + LIMIT + timedelta(seconds=30), tick=True)
    assert dispatch().sent == 1
    assert len(mail.outbox) == 1
    reminder.refresh_from_db()
    assert (reminder.status, reminder.attempts) == (Reminder.Status.SENT, 2)
    assert dispatch().sent == 0  # once


# ---- PDF jobs: the same rule with the heartbeat as the sign of life -------------------------


def test_a_pdf_job_claimed_by_a_worker_that_died_is_taken_over_once_stale(
    coordinator, consented_patient, time_machine
):
    job, _ = export_services.pdf_job_request(
        user=coordinator, kind=PdfJob.Kind.CASEBOOK, patient=consented_patient
    )
    assert export_services.pdf_job_claim(job_id=job.pk)  # then the worker is killed
    assert not export_services.pdf_job_claim(job_id=job.pk)  # fresh: its worker's
    job.refresh_from_db()
    assert (job.status, job.attempts) == (PdfJob.Status.RUNNING, 1)

    stale = timedelta(seconds=settings.PDF_JOB_HEARTBEAT_STALE_SECONDS + 1)
    time_machine.move_to(timezone.now() + stale, tick=True)
    assert export_services.pdf_job_claim(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts) == (PdfJob.Status.RUNNING, 2)
    # The first worker's writes no longer reach the job.
    assert not export_services.PDF_JOB_CLAIM.held_by(pk=job.pk, token=1).exists()
