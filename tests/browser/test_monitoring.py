"""A monitor queries a value, the site answers, the monitor closes; the investigator signs the
visit and the form locks. In Chromium, as those users would."""

import pytest
from playwright.sync_api import expect

from ..factories import complete_screening
from .conftest import click_through, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_query_answer_close_then_sign_and_lock(
    page, consented_patient, screening_visit, andrologist, monitor
):
    complete_screening(screening_visit, andrologist)
    patient_url = f"/patients/{consented_patient.uuid}/"

    login(page, "mona")
    page.goto(patient_url)
    click_through(page, "[data-form='examination-1']")
    click_through(page, "text=Raise a data query")
    page.select_option("#id_field_name", "weight_kg")
    page.fill("#id_question", "Weight 80 kg: please confirm against the clinic note.")
    click_through(page, "button:has-text('Raise query')")
    assert page.inner_text("[data-testid=query-status]") == "Open"
    page.goto(patient_url)
    assert page.locator("[data-testid=open-query]").count() == 1
    click_through(page, "text=Log out")

    login(page, "alice")
    page.goto(patient_url)
    assert page.locator("[data-testid=signature-SCR] a:has-text('Sign visit')").count() == 1
    click_through(page, "[data-form='examination-1']")
    click_through(page, "text=Open the query")
    page.fill("#id_text", "Confirmed: 80 kg in the clinic note.")
    click_through(page, "button[value=answer]")
    assert page.inner_text("[data-testid=query-status]") == "Answered"
    click_through(page, "text=Log out")

    login(page, "mona")
    page.goto("/monitoring/queries/?status=answered")
    click_through(page, "text=Weight 80 kg")
    click_through(page, "button[value=close]")
    assert page.inner_text("[data-testid=query-status]") == "Closed"
    click_through(page, "text=Log out")

    login(page, "alice")
    page.goto(patient_url)
    click_through(page, "[data-testid=signature-SCR] a:has-text('Sign visit')")
    assert "I confirm the data are accurate and complete" in page.inner_text(
        "[data-testid=meaning]"
    )
    page.fill("#id_password", "wrong-password")
    click_through(page, "button:has-text('Sign')")
    assert "not correct: not signed" in page.inner_text("main")
    page.fill("#id_password", "correct-horse-battery")
    page.check("#id_agree")  # her first signature: the agreement, once
    click_through(page, "button:has-text('Sign')")
    assert "Visit SCR signed" in page.inner_text("main")
    assert "signed · locked" in page.inner_text("[data-testid=signature-SCR]")
    click_through(page, "[data-form='examination-1']")
    expect(page.locator("[data-testid=locked]")).to_be_visible()
    assert page.locator("button[name=save]").count() == 0
