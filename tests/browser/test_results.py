"""The monitor opens the results from the menu, filters one site, downloads the CSV and asks
for the PDF (a background job); the patient page shows the patient's charts, in Chromium."""

import pytest
from playwright.sync_api import expect

from exports import services
from exports.models import PdfJob

from ..reports.factories import follow_up, treated
from .conftest import click_through, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_monitor_reads_the_results_of_one_site_and_downloads_them(
    page, site, other_site, andrologist, other_andrologist, monitor, monkeypatch, settings
):
    # The results job runs inside the request, as in the demo (no worker in this test).
    settings.CELERY_TASK_ALWAYS_EAGER = True
    responder = treated(site, andrologist)
    follow_up(responder, andrologist, sperm="PELLET", hormones=("18", "8", "3.6"))
    other = treated(other_site, other_andrologist)
    follow_up(other, other_andrologist, hormones=("25", "11", "3.0"))
    login(page, "mona")
    click_through(page, "nav >> text=Results")
    assert page.inner_text("[data-testid=headline]") == "1/2 = 50.0%"
    page.select_option("#site", "AND")
    click_through(page, "[data-testid=site-filter] button[type=submit]")
    assert page.inner_text("[data-testid=headline]") == "0/1 = 0.0%"
    assert page.locator("figure[data-testid=study-chart] svg").count() == 4
    with page.expect_download() as download:
        page.click("[data-testid=csv-link]")
    assert download.value.suggested_filename.startswith("noa-msc-results-AND-")

    # The PDF is a background job: the button opens its page; the worker is this test.
    monkeypatch.setattr("exports.tasks.pdf_job_run.delay", lambda job_id: None)
    click_through(page, "[data-testid=pdf-button]")
    expect(page.locator("h1")).to_contain_text("Results report · site AND")
    expect(page.locator("[data-testid=job-status]")).to_have_text("Queued")
    job = PdfJob.objects.get(kind=PdfJob.Kind.RESULTS)
    assert services.pdf_job_build(job_id=job.pk) == services.BuildOutcome.BUILT
    link = page.locator("[data-testid=job-download]")
    expect(link).to_be_visible()  # the page polls its status, no reload
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.startswith("noa-msc-results-AND-")
    assert download.value.path().read_bytes().startswith(b"%PDF")

    page.goto(f"/patients/{other.uuid}/")
    charts = page.locator("[data-testid=patient-charts] svg")
    assert charts.count() == 4
    assert charts.first.bounding_box()["width"] > 200  # laid out, not collapsed
