"""Procedure day to first follow-up, in Chromium, as the andrologist walks it: bone-marrow
aspirate, MSC preparation released, injection; the follow-up schedule appears (M4 open); the
M4 semen analysis finds sperm and the patient shows as a responder."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ..conftest import enrol, give_consent
from ..factories import post_data
from ..followup.factories import as_post, values
from .conftest import click_through, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fill(page, data: dict):
    """Fill a form as a user does: click radios, pick from selects, type into inputs."""
    for name, value in data.items():
        radio = page.locator(f"input[type=radio][name={name}][value='{value}']")
        if radio.count():
            radio.check()
        elif page.locator(f"select[name={name}]").count():
            page.select_option(f"select[name={name}]", value)
        else:
            page.fill(f"[name={name}]", value)


def matrix_cell(page, visit, slot):
    return page.locator(f"[data-testid=matrix] tr[data-visit={visit}] [data-form='{slot}']")


def test_procedure_day_to_the_first_follow_up(page, site, andrologist, tmp_path):
    today = timezone.localdate()
    procedure = today - timedelta(days=120)  # so that M4's window is open today
    patient = enrol(site, andrologist, days_ago=200)
    give_consent(patient, andrologist, days_ago=200)
    login(page, "alice")
    page.goto(f"/patients/{patient.uuid}/")
    m4_row = page.locator("[data-testid=matrix] tr[data-visit=M4]")
    assert "not scheduled yet" in m4_row.inner_text()

    # Bone-marrow aspirate: an implausible volume first, then the right one.
    click_through(page, matrix_cell(page, "D0", "bm_aspirate-1"))
    fill(page, as_post(values("bm_aspirate", on=procedure, volume_ml="160")))
    click_through(page, "button[name=save]")
    assert "Volume aspirated (mL) must be between 1 and 120 mL." in page.inner_text("main")
    assert page.input_value("[name=operator]") == "Dr Aspirate"  # nothing typed was lost
    page.fill("[name=volume_ml]", "62")
    click_through(page, "button[name=save]")
    assert "Bone-marrow aspirate saved." in page.inner_text("main")

    # The MSC product, released.
    click_through(page, matrix_cell(page, "D0", "msc_preparation-1"))
    fill(page, as_post(values("msc_preparation", on=procedure)))
    click_through(page, "button[name=save]")
    assert "MSC preparation saved." in page.inner_text("main")

    # The injection: the follow-up schedule appears.
    click_through(page, matrix_cell(page, "D0", "injection-1"))
    fill(page, as_post(values("injection", on=procedure)))
    page.screenshot(path=str(tmp_path / "injection-form.png"), full_page=True)
    click_through(page, "button[name=save]")
    assert "Injection saved." in page.inner_text("main")
    d0 = page.locator("[data-testid=matrix] tr[data-visit=D0]")
    expect(d0.locator("[data-testid=visit-complete]")).to_be_visible()
    window = (
        f"{procedure + timedelta(days=106):%d %b %Y} – {procedure + timedelta(days=134):%d %b %Y}"
    )
    assert window in m4_row.inner_text()

    # The follow-up page: derived time, M4 open today, the later visits upcoming.
    page.goto(f"/followup/patients/{patient.uuid}/")
    assert page.inner_text("[data-testid=aspiration-to-injection]") == "4 h 35 min"
    visits = page.locator("[data-testid=visit-table]")
    assert visits.locator("tr[data-visit=M4]").get_attribute("data-status") == "open"
    assert visits.locator("tr[data-visit=M6]").get_attribute("data-status") == "upcoming"
    assert "No follow-up semen analysis yet." in page.inner_text("[data-testid=responder]")

    # The M4 semen analysis, with sperm seen in the pellet.
    click_through(page, visits.locator("tr[data-visit=M4] [data-form='semen_analysis-1']"))
    fill(page, post_data("semen_analysis", assessment_date=today, sperm_seen="PELLET"))
    click_through(page, "button[name=save]")
    assert "Semen analysis saved." in page.inner_text("main")
    assert matrix_cell(page, "M4", "semen_analysis-1").get_attribute("data-status") == "entered"

    page.goto(f"/followup/patients/{patient.uuid}/")
    responder = page.inner_text("[data-testid=responder]")
    assert "Responder" in responder and "day 120 after the procedure" in responder
    page.screenshot(path=str(tmp_path / "follow-up-page.png"), full_page=True)
