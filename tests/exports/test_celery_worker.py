"""A casebook job built by a real Celery worker that consumes the real Redis broker, the way
production runs it, then downloaded by the coordinator who asked for it."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.urls import reverse

from config.celery_app import app
from exports.models import PdfJob

from .conftest import pdf_text


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_builds_the_casebook_and_the_coordinator_downloads_it(
    client, coordinator, full_patient, tmp_path
):
    assert app.conf.broker_url.startswith("redis://")
    assert not app.conf.task_always_eager
    client.force_login(coordinator)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        client.post(
            reverse("exports:pdf-request"), {"kind": "casebook", "patient": full_patient.uuid}
        )
        job = PdfJob.objects.get()
        status_url = reverse("exports:job-status", args=[job.uuid])
        deadline = time.monotonic() + 60
        status = client.get(status_url).json()
        while status["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.3)
            status = client.get(status_url).json()
    assert status["status"] == "done", status
    job.refresh_from_db()
    assert job.attempts == 1 and job.started_at and job.finished_at
    download = client.get(status["download_url"])
    text = pdf_text(b"".join(download.streaming_content), tmp_path)
    assert "Casebook" in text and "BEN-001" in text and "24.10" in text
    assert full_patient.identity.full_name not in text
