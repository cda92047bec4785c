"""The medication log in Chromium, as the andrologist walks it at month 4: the visit form
refuses "medications taken: Yes" while the log is empty, the log is reached from the form,
clomiphene is recorded there, and the visit then saves."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ..followup.factories import as_post, treated_patient, values
from .conftest import click_through, login
from .test_procedure_to_followup import fill

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_medication_is_logged_before_the_visit_says_yes(page, site, andrologist, tmp_path):
    today = timezone.localdate()
    patient = treated_patient(site, andrologist, procedure_days_ago=120)
    login(page, "alice")
    page.goto(f"/followup/patients/{patient.uuid}/")
    expect(page.locator("[data-testid=cm-card]")).to_contain_text("0 recorded")

    # M4: "Yes" with an empty log is refused on the field, the rest of the form kept.
    m4 = page.locator("[data-testid=visit-table] tr[data-visit=M4]")
    click_through(page, m4.locator("[data-form='followup_visit-1']"))
    visit_url = page.url
    fill(page, as_post(values("followup_visit", on=today, concomitant_medications_taken="Y")))
    click_through(page, "button[name=save]")
    expect(page.locator("main")).to_contain_text("Record it in the log first")
    assert page.input_value("[name=left_volume_ml]") == "10"

    # The log, from the link above the form.
    click_through(page, "[data-testid=patient-logs] >> text=concomitant medications")
    click_through(page, "text=Record a medication")
    start = today - timedelta(days=200)
    fill(
        page,
        {
            "medication": "Clomiphene citrate",
            "indication": "Male infertility",
            "hormone_class": "NONE",
            "dose": "50",
            "dose_unit": "mg",
            "route": "ORAL",
            "frequency": "QD",
            "start_date": start.isoformat(),
        },
    )
    page.check("[name=ongoing]")
    click_through(page, "button[name=save]")
    # Filed as not hormone-active: refused with the class to choose.
    expect(page.locator("main")).to_contain_text("Clomiphene citrate is hormone-active")
    page.select_option("select[name=hormone_class]", "SERM")
    page.screenshot(path=str(tmp_path / "medication-form.png"), full_page=True)
    click_through(page, "button[name=save]")
    expect(page.locator("main")).to_contain_text("Medication 1 (Clomiphene citrate) recorded.")
    row = page.locator("[data-testid=cm-table] tr[data-cm='1']")
    expect(row).to_contain_text("50 mg · Oral · Once a day")
    expect(row).to_contain_text("Clomiphene or other SERM")
    expect(row).to_contain_text("prior")  # started before the consent
    page.screenshot(path=str(tmp_path / "medication-log.png"), full_page=True)

    # Back to M4: the same answer now saves.
    page.goto(visit_url)
    fill(page, as_post(values("followup_visit", on=today, concomitant_medications_taken="Y")))
    click_through(page, "button[name=save]")
    expect(page.locator("main")).to_contain_text("Follow-up visit saved.")
    page.goto(f"/followup/patients/{patient.uuid}/")
    expect(page.locator("[data-testid=cm-card]")).to_contain_text("1 recorded · 1 hormone-active")
    page.screenshot(path=str(tmp_path / "follow-up-page.png"), full_page=True)
