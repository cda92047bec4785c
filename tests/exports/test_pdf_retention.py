"""PDF job files are copies of the database: after PDF_JOB_RETENTION_DAYS the daily run deletes
them and marks the job expired; the job page says so and asks for a new file."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from exports import services
from exports.models import PdfJob
from exports.tasks import expire_pdf_job_files

from .conftest import ask_again_form

# A fixed instant, not the import-time clock: the tests pass it to pdf_jobs_expire(now=...).
NOW = datetime(2026, 3, 11, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fourteen_days(settings):
    settings.PDF_JOB_RETENTION_DAYS = 14


def finished_job(user, patient, *, finished_at, status=PdfJob.Status.DONE, visit=None) -> PdfJob:
    """A casebook (or visit) job as the worker leaves it: its file in storage, finished then."""
    kind = PdfJob.Kind.VISIT if visit else PdfJob.Kind.CASEBOOK
    job, _ = services.pdf_job_request(user=user, kind=kind, patient=patient, visit=visit)
    job.file.save("NCT02025270_BEN-001_casebook.pdf", ContentFile(b"%PDF-1.7 test"), save=False)
    PdfJob.objects.filter(pk=job.pk).update(
        status=status, file=job.file.name, started_at=finished_at, finished_at=finished_at
    )
    job.refresh_from_db()
    return job


def test_a_file_older_than_the_retention_is_deleted_and_its_job_marked_expired(
    coordinator, consented_patient
):
    job = finished_job(coordinator, consented_patient, finished_at=NOW - timedelta(days=15))
    name = job.file.name
    assert default_storage.exists(name)

    assert services.pdf_jobs_expire(now=NOW) == 1

    job.refresh_from_db()
    assert (job.status, job.expired_at, job.file.name) == ("expired", NOW, "")
    assert not default_storage.exists(name)
    assert not os.path.exists(os.path.dirname(default_storage.path(name)))  # its folder too


def test_on_a_storage_without_folders_the_file_is_deleted_and_the_job_expired(
    coordinator, consented_patient, monkeypatch
):
    # An object store (S3 and the like) keeps blobs by name and has no path(): Django's base
    # Storage.path() raises NotImplementedError, and there is no folder to remove.
    from django.core.files.storage import Storage

    class ObjectStore(Storage):
        def __init__(self):
            self.blobs = {}

        def _save(self, name, content):
            self.blobs[name] = content.read()
            return name

        def _open(self, name, mode="rb"):
            return ContentFile(self.blobs[name], name=name)

        def exists(self, name):
            return name in self.blobs

        def delete(self, name):
            self.blobs.pop(name, None)

    storage = ObjectStore()
    monkeypatch.setattr(PdfJob._meta.get_field("file"), "storage", storage)
    job = finished_job(coordinator, consented_patient, finished_at=NOW - timedelta(days=15))
    name = job.file.name
    assert storage.exists(name)
    with pytest.raises(NotImplementedError):
        storage.path(name)

    assert services.pdf_jobs_expire(now=NOW) == 1

    job.refresh_from_db()
    assert (job.status, job.file.name) == ("expired", "")
    assert not storage.exists(name)


def test_a_recent_file_and_jobs_not_done_are_kept(coordinator, consented_patient, screening_visit):
    recent = finished_job(
        coordinator, consented_patient, finished_at=NOW - timedelta(days=13, hours=23)
    )
    old = NOW - timedelta(days=30)
    others = [
        finished_job(coordinator, consented_patient, finished_at=old, status="failed"),
        finished_job(coordinator, consented_patient, finished_at=old, status="running"),
        # Another target: only one job per target may be queued or running.
        finished_job(
            coordinator, consented_patient, finished_at=old, status="queued", visit=screening_visit
        ),
    ]
    assert len({job.pk for job in others}) == 3

    assert services.pdf_jobs_expire(now=NOW) == 0

    for job in (recent, *others):
        status = job.status
        job.refresh_from_db()
        assert job.status == status and job.expired_at is None
        assert default_storage.exists(job.file.name)


def test_the_retention_is_the_setting(settings, coordinator, consented_patient):
    settings.PDF_JOB_RETENTION_DAYS = 2
    job = finished_job(coordinator, consented_patient, finished_at=NOW - timedelta(days=3))
    assert services.pdf_jobs_expire(now=NOW) == 1
    job.refresh_from_db()
    assert job.status == "expired"


def test_running_it_twice_does_nothing_the_second_time(coordinator, consented_patient):
    job = finished_job(coordinator, consented_patient, finished_at=NOW - timedelta(days=20))
    assert services.pdf_jobs_expire(now=NOW) == 1
    assert services.pdf_jobs_expire(now=NOW + timedelta(days=1)) == 0
    job.refresh_from_db()
    assert (job.status, job.expired_at) == ("expired", NOW)


def test_a_file_already_missing_on_disk_is_not_an_error(coordinator, consented_patient):
    job = finished_job(coordinator, consented_patient, finished_at=NOW - timedelta(days=20))
    default_storage.delete(job.file.name)
    assert services.pdf_jobs_expire(now=NOW) == 1
    job.refresh_from_db()
    assert job.status == "expired"


# ---- what the user sees ----------------------------------------------------------------------


def test_an_expired_jobs_page_says_so_and_offers_to_ask_again(
    client, coordinator, consented_patient
):
    job = finished_job(coordinator, consented_patient, finished_at=NOW - timedelta(days=20))
    services.pdf_jobs_expire(now=NOW)
    client.force_login(coordinator)
    html = client.get(reverse("exports:job-detail", args=[job.uuid])).content.decode()
    assert "This file expired after 14 days; ask for it again." in html
    assert 'data-testid="job-ask-again"' in html
    status = client.get(reverse("exports:job-status", args=[job.uuid])).json()
    assert (status["status"], status["status_label"], status["download_url"]) == (
        "expired",
        "Expired",
        "",
    )
    listing = client.get(reverse("exports:study")).content.decode()
    assert "Expired after 14 days" in listing
    assert 'data-testid="job-ask-again"' in listing


def test_downloading_an_expired_file_says_it_expired(client, coordinator, consented_patient):
    job = finished_job(coordinator, consented_patient, finished_at=NOW - timedelta(days=20))
    download = reverse("exports:job-download", args=[job.uuid])
    services.pdf_jobs_expire(now=NOW)
    client.force_login(coordinator)
    response = client.get(download, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(reverse("exports:job-detail", args=[job.uuid]), 302)]
    assert "This file has expired and was deleted; ask for it again." in response.content.decode()


def test_a_ready_job_whose_file_is_gone_from_disk_is_not_a_server_error(
    client, coordinator, consented_patient
):
    job = finished_job(coordinator, consented_patient, finished_at=NOW)
    default_storage.delete(job.file.name)  # the retention run, between the two steps
    client.force_login(coordinator)
    response = client.get(reverse("exports:job-download", args=[job.uuid]), follow=True)
    assert response.status_code == 200
    assert "This file is no longer on the server; ask for it again." in response.content.decode()


def test_asking_again_after_expiry_builds_a_new_file(
    client, coordinator, full_patient, eager_celery, django_capture_on_commit_callbacks
):
    client.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("exports:pdf-request"),
            {
                "kind": "visit",
                "patient": full_patient.uuid,
                "visit": full_patient.visits.get(definition__code="SCR").uuid,
            },
        )
    first = PdfJob.objects.get()
    old_file = first.file.name
    assert first.status == "done" and default_storage.exists(old_file)
    services.pdf_jobs_expire(now=first.finished_at + timedelta(days=15))

    page = client.get(reverse("exports:job-detail", args=[first.uuid])).content.decode()
    action, fields = ask_again_form(page)
    assert action == reverse("exports:pdf-request")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(action, fields)

    second = PdfJob.objects.exclude(pk=first.pk).get()
    assert response.url == reverse("exports:job-detail", args=[second.uuid])
    assert (second.kind, second.visit_id, second.target_key) == (
        first.kind,
        first.visit_id,
        first.target_key,
    )
    assert second.status == "done" and default_storage.exists(second.file.name)
    assert second.file.name != old_file and not default_storage.exists(old_file)
    download = client.get(reverse("exports:job-download", args=[second.uuid]))
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    first.refresh_from_db()
    assert first.status == "expired"


# ---- the daily run ---------------------------------------------------------------------------


def test_the_daily_run_is_in_the_beat_schedule_and_its_task_registered():
    from config.celery_app import app

    entry = django_settings.CELERY_BEAT_SCHEDULE["expire-pdf-job-files"]
    assert entry["task"] == expire_pdf_job_files.name == "exports.tasks.expire_pdf_job_files"
    assert entry["task"] in app.tasks
    schedule = entry["schedule"]
    assert isinstance(schedule, crontab)
    assert schedule.day_of_week == set(range(7)) and schedule.day_of_month == set(range(1, 32))
    assert len(schedule.hour) == len(schedule.minute) == 1  # once a day


def test_the_task_expires_the_old_files(coordinator, consented_patient):
    job = finished_job(coordinator, consented_patient, finished_at=NOW - timedelta(days=20))
    assert expire_pdf_job_files.apply().get() == 1
    job.refresh_from_db()
    assert job.status == "expired"


@pytest.mark.parametrize(("value", "days"), [("30", "30"), ("0", None)])
def test_the_retention_is_read_from_the_environment(value, days):
    env = {k: v for k, v in os.environ.items() if k != "PDF_JOB_RETENTION_DAYS"}
    if value is not None:
        env["PDF_JOB_RETENTION_DAYS"] = value
    run = subprocess.run(
        [sys.executable, "-c", "import config.settings.base as s; print(s.PDF_JOB_RETENTION_DAYS)"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    if days is None:
        assert run.returncode != 0 and "PDF_JOB_RETENTION_DAYS must be 1 or more" in run.stderr
    else:
        assert run.stdout.strip() == days, run.stderr
