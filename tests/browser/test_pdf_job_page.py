"""In Chromium: the coordinator asks for a casebook from the patient page; the job page
follows the build without reloading and offers the download when the worker is done."""

import pytest
from playwright.sync_api import expect

from exports import services
from exports.models import PdfJob

from ..exports.conftest import full_patient  # noqa: F401 - the patient with CRFs
from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_job_page_updates_itself_and_offers_the_download(
    page,
    coordinator,
    full_patient,  # noqa: F811
    monkeypatch,
):
    # The worker is this test: the request only queues the job (no task is sent).
    monkeypatch.setattr("exports.tasks.pdf_job_run.delay", lambda job_id: None)
    login(page, "carol")
    page.goto(f"/patients/{full_patient.uuid}/")
    page.click("[data-testid=pdf-buttons] >> text=Casebook PDF")
    page.wait_for_selector("[data-testid=job-status]:has-text('Queued')")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("[data-testid=job-download]")).to_be_hidden()

    job = PdfJob.objects.get()
    assert services.pdf_job_build(job_id=job.pk) == services.BuildOutcome.BUILT

    page.wait_for_selector("[data-testid=job-status]:has-text('Ready')")
    assert page.evaluate("window.notReloaded") is True
    link = page.locator("[data-testid=job-download]")
    expect(link).to_be_visible()
    expect(link).to_contain_text("BEN-001_casebook")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".pdf")
    assert download.value.path().read_bytes().startswith(b"%PDF")
