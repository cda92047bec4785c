"""A new andrologist's first patient, in Chromium: log in, enrol, consent, all screening CRFs
(one rejected first), and the matrix turns complete."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ..factories import post_data
from .conftest import click_through, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HISTORICAL = {"karyotype", "azf", "biopsy"}  # may be dated before consent


def fill_crf(page, code, **changes):
    """Fill a CRF as a user does: click radios, pick from selects, type into inputs."""
    today = timezone.localdate()
    if code not in HISTORICAL:
        changes.setdefault("assessment_date", today)
    for name, value in post_data(code, **changes).items():
        radio = page.locator(f"input[type=radio][name={name}][value='{value}']")
        if radio.count():
            radio.check()
        elif page.locator(f"select[name={name}]").count():
            page.select_option(f"select[name={name}]", value)
        elif value:
            page.fill(f"[name={name}]", value)


def matrix_cell(page, slot):
    return page.locator(f"[data-testid=matrix] [data-form='{slot}']")


def test_a_new_andrologist_screens_a_first_patient(page, andrologist, tmp_path):
    login(page, "alice")
    click_through(page, "nav >> text=Patients")
    click_through(page, "text=Enrol a patient")
    page.fill("#id_date_of_birth", (timezone.localdate() - timedelta(days=365 * 31)).isoformat())
    page.fill("#id_full_name", "Hassan Browser")
    page.fill("#id_phone", "+20 100 555 0101")
    click_through(page, "button:has-text('Enrol')")
    assert page.inner_text("[data-testid=study-id]") == "BEN-001"
    assert "No consent is recorded" in page.inner_text("[data-testid=consent-status]")

    # Consent, with the signed scan.
    click_through(page, "text=Record consent")
    signed = timezone.localtime() - timedelta(hours=1)
    page.fill("#id_signed_at", signed.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_witness_name", "Nurse Hoda")
    page.check("#id_patient_copy_given")
    scan = tmp_path / "signed-consent.pdf"
    scan.write_bytes(b"%PDF-1.4\n% signed consent\n%%EOF\n")
    page.set_input_files("#id_document", str(scan))
    click_through(page, "button:has-text('Record consent')")
    assert "Consent is current" in page.inner_text("[data-testid=consent-status]")

    # The first semen analysis, with an implausible abstinence first.
    click_through(page, matrix_cell(page, "semen_analysis-1"))
    fill_crf(page, "semen_analysis", abstinence_days=45, volume_ml="3.1")
    click_through(page, "button[name=save]")
    assert "Abstinence (days) must be between 0 and 30 days." in page.inner_text("main")
    assert page.input_value("[name=volume_ml]") == "3.1"  # nothing typed was lost
    page.fill("[name=abstinence_days]", "4")
    click_through(page, "button[name=save]")
    assert "Semen analysis 1 saved." in page.inner_text("main")
    assert matrix_cell(page, "semen_analysis-1").get_attribute("data-status") == "entered"

    # Every other screening form, "save and next" style.
    for slot, code in [
        ("eligibility-1", "eligibility"),
        ("medical_history-1", "medical_history"),
        ("examination-1", "examination"),
        ("semen_analysis-2", "semen_analysis"),
        ("semen_analysis-3", "semen_analysis"),
        ("hormones-1", "hormones"),
        ("karyotype-1", "karyotype"),
        ("azf-1", "azf"),
        ("biopsy-1", "biopsy"),
    ]:
        click_through(page, matrix_cell(page, slot))
        fill_crf(page, code)
        click_through(page, "button[name=save]")
        assert "saved" in page.inner_text("main"), slot
        assert matrix_cell(page, slot).get_attribute("data-status") == "entered", slot

    scr = page.locator("[data-testid=matrix] tr[data-visit=SCR]")
    expect(scr.locator("[data-testid=visit-complete]")).to_be_visible()
    assert scr.locator("[data-status=missing]").count() == 0
    assert "Eligible" in page.inner_text("[data-testid=stage]")
    page.screenshot(path=str(tmp_path / "patient-page.png"), full_page=True)
