"""A coordinator asks for CRF PDFs: a job row, built once by a task, followed on a page that
polls its status, downloaded through a view that checks who is asking."""

import io
import zipfile
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from exports import services
from exports.models import PdfJob
from exports.tasks import pdf_job_run

from ..conftest import enrol, give_consent
from .conftest import pdf_text


def _ask(client, **data):
    return client.post(reverse("exports:pdf-request"), data)


def test_a_coordinator_asks_for_a_casebook_and_downloads_it(
    client, coordinator, full_patient, eager_celery, django_capture_on_commit_callbacks, tmp_path
):
    client.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        response = _ask(client, kind="casebook", patient=full_patient.uuid)
    job = PdfJob.objects.get()
    assert response.url == reverse("exports:job-detail", args=[job.uuid])
    page = client.get(response.url).content.decode()
    assert "Ready" in page and "Download" in page
    status = client.get(reverse("exports:job-status", args=[job.uuid])).json()
    assert status["status"] == "done"
    assert status["filename"].startswith("NCT02025270_BEN-001_casebook_")
    download = client.get(status["download_url"])
    assert download["Content-Type"] == "application/pdf"
    assert "attachment" in download["Content-Disposition"]
    text = pdf_text(b"".join(download.streaming_content), tmp_path)
    assert "BEN-001" in text and "Casebook" in text
    assert "Secretname" not in text


def test_the_job_page_polls_a_small_json_status_while_queued(client, coordinator, full_patient):
    client.force_login(coordinator)
    response = _ask(client, kind="casebook", patient=full_patient.uuid)  # not committed: queued
    job = PdfJob.objects.get()
    page = client.get(response.url).content.decode()
    status_url = reverse("exports:job-status", args=[job.uuid])
    assert f'data-status-url="{status_url}"' in page
    # Refreshes the card, not the page: a static script (the Content-Security-Policy allows
    # no inline one), loaded by the page.
    assert '<script src="/static/js/pdf_job.js" defer></script>' in page
    script = (settings.BASE_DIR / "static" / "js" / "pdf_job.js").read_text()
    assert "setTimeout(poll" in script
    assert client.get(status_url).json() == {
        "status": "queued",
        "status_label": "Queued",
        "done": 0,
        "total": 0,
        "error": "",
        "notice": "",
        "download_url": "",
        "filename": "",
    }
    assert client.get(reverse("exports:job-download", args=[job.uuid])).status_code == 404


def test_a_second_click_returns_the_job_already_queued(client, coordinator, full_patient):
    client.force_login(coordinator)
    first = _ask(client, kind="casebook", patient=full_patient.uuid)
    second = client.post(
        reverse("exports:pdf-request"),
        {"kind": "casebook", "patient": full_patient.uuid},
        follow=True,
    )
    assert PdfJob.objects.count() == 1
    assert second.redirect_chain[-1][0] == first.url
    assert "already asked for" in second.content.decode()


def test_the_task_is_sent_only_once_the_request_is_committed(
    coordinator, full_patient, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(pdf_job_run, "delay", lambda job_id: sent.append(job_id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job, created = services.pdf_job_request(
            user=coordinator, kind=PdfJob.Kind.CASEBOOK, patient=full_patient
        )
    assert created and sent == []
    for callback in callbacks:
        callback()
    assert sent == [job.pk]


def test_a_redelivered_task_builds_nothing_twice(coordinator, full_patient, monkeypatch):
    job, _ = services.pdf_job_request(
        user=coordinator, kind=PdfJob.Kind.CASEBOOK, patient=full_patient
    )
    renders = []
    real = services.crf_document_pdf
    monkeypatch.setattr(services, "crf_document_pdf", lambda doc: renders.append(1) or real(doc))
    assert pdf_job_run.apply(args=[job.pk]).get() == "built"
    job.refresh_from_db()
    first_file = job.file.name
    assert pdf_job_run.apply(args=[job.pk]).get() == "already finished"
    job.refresh_from_db()
    assert (job.status, job.file.name, job.attempts, len(renders)) == ("done", first_file, 1, 1)


def test_a_job_held_by_another_worker_waits_and_an_abandoned_one_is_taken_over(
    coordinator, full_patient
):
    job, _ = services.pdf_job_request(
        user=coordinator, kind=PdfJob.Kind.CASEBOOK, patient=full_patient
    )
    PdfJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now())
    assert services.pdf_job_build(job_id=job.pk) == services.BuildOutcome.BUSY
    # The worker holding it died: once its heartbeat is stale the job is built again.
    abandoned = timezone.now() - services.heartbeat_stale() - timedelta(seconds=1)
    PdfJob.objects.filter(pk=job.pk).update(started_at=abandoned, heartbeat_at=abandoned)
    assert services.pdf_job_build(job_id=job.pk) == services.BuildOutcome.BUILT
    job.refresh_from_db()
    assert job.status == "done" and job.file and job.attempts == 1


def test_a_failed_build_tells_the_user_what_to_do(
    client, coordinator, full_patient, monkeypatch, eager_celery, django_capture_on_commit_callbacks
):
    def broken(document):
        raise RuntimeError("pango exploded")

    monkeypatch.setattr(services, "crf_document_pdf", broken)
    client.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        response = _ask(client, kind="casebook", patient=full_patient.uuid)
    status = client.get(response.url.rstrip("/") + "/status/").json()
    assert status["status"] == "failed"
    assert status["error"].startswith("The PDF could not be built")
    assert "Ask again" in client.get(response.url).content.decode()
    assert "pango" not in status["error"]
    # A new click after a failure starts a new job.
    _ask(client, kind="casebook", patient=full_patient.uuid)
    assert PdfJob.objects.count() == 2


def test_a_site_zip_reports_progress_and_holds_one_casebook_per_patient(
    client,
    site,
    coordinator,
    andrologist,
    full_patient,
    other_patient,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    for _ in range(2):
        give_consent(enrol(site, andrologist), andrologist)
    client.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        response = _ask(client, kind="site_casebooks", site=site.uuid)
    status = client.get(reverse("exports:job-status", args=[PdfJob.objects.get().uuid])).json()
    assert (status["status"], status["done"], status["total"]) == ("done", 3, 3)
    assert "3 of 3 patients" in client.get(response.url).content.decode()
    archive = zipfile.ZipFile(
        io.BytesIO(b"".join(client.get(status["download_url"]).streaming_content))
    )
    assert archive.namelist() == [
        "BEN-001_casebook.pdf",
        "BEN-002_casebook.pdf",
        "BEN-003_casebook.pdf",
    ]
    assert archive.read("BEN-001_casebook.pdf").startswith(b"%PDF")


def test_the_study_zip_holds_only_the_requesters_sites(coordinator, full_patient, other_patient):
    job, _ = services.pdf_job_request(user=coordinator, kind=PdfJob.Kind.STUDY_CASEBOOKS)
    assert services.pdf_job_build(job_id=job.pk) == services.BuildOutcome.BUILT
    job.refresh_from_db()
    with job.file.open("rb") as handle:
        assert zipfile.ZipFile(handle).namelist() == ["BEN-001_casebook.pdf"]


def test_a_form_not_yet_entered_cannot_be_printed(client, coordinator, consented_patient):
    client.force_login(coordinator)
    visit = consented_patient.visits.get(definition__code="SCR")
    response = client.post(
        reverse("exports:pdf-request"),
        {"kind": "form", "patient": consented_patient.uuid, "slot": f"{visit.uuid}/hormones/1"},
        follow=True,
    )
    assert "Hormones has not been entered at visit SCR" in response.content.decode()
    assert not PdfJob.objects.exists()


def test_the_patient_page_offers_casebook_visit_and_form_pdfs(client, coordinator, full_patient):
    client.force_login(coordinator)
    html = client.get(reverse("patients:patient-detail", args=[full_patient.uuid])).content.decode()
    assert 'data-testid="pdf-buttons"' in html
    assert "Casebook PDF" in html and "Visit PDF" in html
    assert "SCR · Semen analysis 2" in html  # one option per entered form


@pytest.mark.parametrize("role_fixture", ["lab_technician"])
def test_a_lab_technician_cannot_ask_for_pdfs(client, request, role_fixture, full_patient):
    client.force_login(request.getfixturevalue(role_fixture))
    response = _ask(client, kind="casebook", patient=full_patient.uuid)
    assert response.status_code == 403
    html = client.get(reverse("patients:patient-detail", args=[full_patient.uuid])).content.decode()
    assert 'data-testid="pdf-buttons"' not in html


def test_an_andrologist_and_a_monitor_can_ask_for_a_casebook(
    client, andrologist, monitor, full_patient
):
    for user in (andrologist, monitor):
        client.force_login(user)
        assert _ask(client, kind="casebook", patient=full_patient.uuid).status_code == 302
    assert PdfJob.objects.count() == 2


def test_another_sites_patient_job_and_download_are_not_found(
    client, coordinator, other_andrologist, full_patient, other_patient, other_site
):
    client.force_login(coordinator)
    assert _ask(client, kind="casebook", patient=other_patient.uuid).status_code == 404
    assert _ask(client, kind="site_casebooks", site=other_site.uuid).status_code == 404
    job, _ = services.pdf_job_request(
        user=coordinator, kind=PdfJob.Kind.CASEBOOK, patient=full_patient
    )
    services.pdf_job_build(job_id=job.pk)
    client.force_login(other_andrologist)
    for name in ("exports:job-detail", "exports:job-status", "exports:job-download"):
        assert client.get(reverse(name, args=[job.uuid])).status_code == 404, name


def test_a_job_is_not_downloadable_once_the_patient_leaves_the_users_sites(
    client, coordinator, full_patient
):
    job, _ = services.pdf_job_request(
        user=coordinator, kind=PdfJob.Kind.CASEBOOK, patient=full_patient
    )
    services.pdf_job_build(job_id=job.pk)
    client.force_login(coordinator)
    assert client.get(reverse("exports:job-download", args=[job.uuid])).status_code == 200
    coordinator.site_memberships.all().delete()
    assert client.get(reverse("exports:job-download", args=[job.uuid])).status_code == 404


def test_casebooks_of_a_site_without_patients_fail_with_the_reason(coordinator, site):
    job, _ = services.pdf_job_request(user=coordinator, kind=PdfJob.Kind.SITE_CASEBOOKS, site=site)
    assert services.pdf_job_build(job_id=job.pk) == services.BuildOutcome.FAILED
    job.refresh_from_db()
    assert job.status == "failed" and not job.file
    assert job.error == "There is no patient at your sites to put in the casebooks."
