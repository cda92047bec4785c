"""A double click sends one form (static/js/forms.js), and a button's name still goes with
it ("Save and next missing form"). The server refuses a second create too
(tests/core/test_double_submit.py): here the browser's part."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.models import Patient

from ..factories import post_data
from .conftest import click_through, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_double_click_on_enrol_sends_the_form_once(page, andrologist):
    login(page, "alice")
    page.goto(reverse("patients:patient-enrol"))
    page.fill("#id_date_of_birth", (timezone.localdate() - timedelta(days=365 * 31)).isoformat())
    page.fill("#id_full_name", "Hassan Twice")
    # Count the submissions that would leave the page, and hold them there: a listener on
    # window runs after the page's own (on document).
    page.evaluate(
        """window.sent = 0; window.addEventListener('submit', (e) => {
             if (!e.defaultPrevented) window.sent++; e.preventDefault(); })"""
    )
    button = page.locator("button:has-text('Enrol')")
    button.click()
    assert button.is_disabled()
    button.evaluate("(b) => { b.form.requestSubmit(); b.form.requestSubmit(); }")
    assert page.evaluate("window.sent") == 1
    assert not Patient.objects.exists()


def test_double_clicking_enrol_for_real_makes_one_patient(page, andrologist):
    login(page, "alice")
    page.goto(reverse("patients:patient-enrol"))
    page.fill("#id_date_of_birth", (timezone.localdate() - timedelta(days=365 * 31)).isoformat())
    page.fill("#id_full_name", "Hassan Twice")
    with page.expect_navigation():
        page.locator("button:has-text('Enrol')").dblclick()
    assert page.inner_text("[data-testid=study-id]") == "BEN-001"
    assert Patient.objects.count() == 1


def test_save_and_next_still_goes_to_the_next_missing_form(
    page, consented_patient, screening_visit, andrologist
):
    login(page, "alice")
    url = reverse(
        "patients:crf-edit", args=[consented_patient.uuid, screening_visit.uuid, "hormones", 1]
    )
    page.goto(url)
    for name, value in post_data("hormones").items():
        field = page.locator(f"[name={name}]")
        if field.count() and field.first.get_attribute("type") not in ("radio", "hidden"):
            field.first.fill(value)
    click_through(page, "button[name=save_next]")
    # The next form of the visit that is still missing, not the patient page.
    assert page.url.endswith(
        reverse(
            "patients:crf-edit",
            args=[consented_patient.uuid, screening_visit.uuid, "eligibility", 1],
        )
    ), page.url
