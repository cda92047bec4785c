"""In Chromium, under the app's Content-Security-Policy: the main pages load with nothing
blocked, their scripts still work (the PDF job page polls, the results charts draw), and a
script injected into a page does not run."""

import pytest
from playwright.sync_api import expect

from exports import services
from exports.models import PdfJob

from ..exports.conftest import full_patient  # noqa: F401 - every CRF entered
from ..security.conftest import trial_in_use  # noqa: F401 - every kind of page has data
from .conftest import RECORD_CSP_VIOLATIONS, csp_violations, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_main_pages_load_with_nothing_blocked(page, trial_in_use):  # noqa: F811
    patient = trial_in_use
    scr = patient.visits.get(definition__code="SCR")
    login(page, "adam")
    pages = [
        "/",
        "/patients/",
        f"/patients/{patient.uuid}/",
        f"/patients/{patient.uuid}/visits/{scr.uuid}/hormones/1/",
        f"/followup/patients/{patient.uuid}/",
        f"/followup/patients/{patient.uuid}/adverse-events/",
        f"/followup/patients/{patient.uuid}/medications/",
        "/followup/schedule/",
        "/monitoring/queries/",
        "/monitoring/consent-audit/",
        "/monitoring/user-access/",
        "/audit/",
        "/audit/review/",
        "/reports/results/",
        "/exports/",
        "/trial/protocol/",
        "/admin/",
        "/admin/trial/consentversion/",
    ]
    for url in pages:
        response = page.goto(url)
        assert response.status == 200, url
        assert "script-src 'self'" in response.headers["content-security-policy"], url
        page.wait_for_load_state("load")
        assert csp_violations(page) == [], url
    # The charts are drawn (inline SVG from the server, styled by edc.css).
    page.goto(f"/patients/{patient.uuid}/")
    charts = page.locator("[data-testid=patient-charts] svg")
    assert charts.count() >= 1
    assert charts.first.bounding_box()["width"] > 200


def test_the_pdf_job_page_still_polls_under_the_policy(page, trial_in_use, monkeypatch):  # noqa: F811
    monkeypatch.setattr("exports.tasks.pdf_job_run.delay", lambda job_id: None)
    job = PdfJob.objects.get(requested_by__username="carol")
    login(page, "carol")
    page.goto(f"/exports/jobs/{job.uuid}/")
    expect(page.locator("[data-testid=job-status]")).to_have_text("Queued")
    # The bar's first width comes from static/js/pdf_job.js (no inline style).
    assert page.locator(".progress-bar").evaluate("e => e.style.width") == "5%"
    page.evaluate("window.notReloaded = true")
    assert services.pdf_job_build(job_id=job.pk) == services.BuildOutcome.BUILT
    expect(page.locator("[data-testid=job-download]")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    assert page.locator(".progress-bar").evaluate("e => e.style.width") == "100%"
    assert csp_violations(page) == []


def test_an_injected_inline_script_is_blocked(browser, live_server, trial_in_use):  # noqa: F811
    # Its own context: the `page` fixture fails any test where the policy blocked something,
    # and here blocking is the point.
    context = browser.new_context(base_url=live_server.url)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    page = context.new_page()
    login(page, "alice")
    page.goto("/patients/")
    page.evaluate(
        """() => {
        const s = document.createElement("script");
        s.textContent = "window.injected = true";
        document.body.appendChild(s);
        const d = document.createElement("div");
        d.setAttribute("onclick", "window.injected = true");
        document.body.appendChild(d);
        d.click();
      }"""
    )
    page.wait_for_function("window.__cspViolations.length >= 2")
    assert page.evaluate("window.injected") is None
    assert all(v.startswith("script-src") for v in csp_violations(page))
    context.close()
