"""Create forms create once (issue 10): a double click, a reload of the POST or a retry after
a lost response returns the first result. Each create form carries a one-time token
(core.submissions); the consent also has a database constraint per patient and version."""

import re
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from followup.models import AdverseEvent, ConcomitantMedication
from monitoring.models import DataQuery
from patients.models import Consent, Patient
from trial.models import ConsentVersion

from ..factories import save_crf
from ..faults import at_once
from ..followup.factories import ae_values, as_post, cm_values


def _token(client, url) -> str:
    html = client.get(url).content.decode()
    return re.search(r'name="form_token" value="([0-9a-f-]{36})"', html).group(1)


def _enrol_data(andrologist, token, name="Karim Typed"):
    return {
        "site": andrologist.site_memberships.get().site_id,
        "enrolment_date": timezone.localdate().isoformat(),
        "date_of_birth": (timezone.localdate() - timedelta(days=365 * 30)).isoformat(),
        "full_name": name,
        "form_token": token,
    }


def test_enrolling_twice_with_one_form_makes_one_patient_and_shows_it(client, andrologist):
    client.force_login(andrologist)
    url = reverse("patients:patient-enrol")
    data = _enrol_data(andrologist, _token(client, url))
    first = client.post(url, data)
    second = client.post(url, data, follow=True)
    patient = Patient.objects.get()
    assert (
        first.url
        == second.redirect_chain[-1][0]
        == reverse("patients:patient-detail", args=[patient.uuid])
    )
    assert "had already been saved (Patient BEN-001)" in second.content.decode()
    assert "Nothing was created twice" in second.content.decode()


def test_a_new_page_is_a_new_patient(client, andrologist):
    client.force_login(andrologist)
    url = reverse("patients:patient-enrol")
    client.post(url, _enrol_data(andrologist, _token(client, url)))
    client.post(url, _enrol_data(andrologist, _token(client, url), name="Another Man"))
    assert list(Patient.objects.values_list("study_id", flat=True).order_by("number")) == [
        "BEN-001",
        "BEN-002",
    ]


def test_a_refused_first_try_does_not_use_up_the_token(client, andrologist):
    client.force_login(andrologist)
    url = reverse("patients:patient-enrol")
    token = _token(client, url)
    too_young = {**_enrol_data(andrologist, token), "date_of_birth": timezone.localdate()}
    assert client.post(url, too_young).status_code == 200
    assert client.post(url, _enrol_data(andrologist, token)).status_code == 302
    assert Patient.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_double_click_on_enrol_at_the_same_instant_makes_one_patient(andrologist):
    """Both POSTs in flight at once: the second waits on the token's unique index until the
    first commits, then is sent to the first patient."""
    clients = [Client(), Client()]
    for c in clients:
        c.force_login(andrologist)
    url = reverse("patients:patient-enrol")
    data = _enrol_data(andrologist, _token(clients[0], url))
    responses = at_once(*(lambda c=c: c.post(url, data) for c in clients))
    assert [r.status_code for r in responses] == [302, 302]
    patient = Patient.objects.get()
    assert {r.url for r in responses} == {reverse("patients:patient-detail", args=[patient.uuid])}


def test_recording_one_consent_twice_keeps_one_row(client, patient, andrologist):
    client.force_login(andrologist)
    url = reverse("patients:consent-create", args=[patient.uuid])
    data = {
        "consent_version": ConsentVersion.objects.get().pk,
        "signed_at": (timezone.localtime() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "obtained_by": andrologist.pk,
        "witness_name": "Nurse Hoda",
        "form_token": _token(client, url),
    }
    assert client.post(url, data).status_code == 302
    second = client.post(url, data, follow=True)
    assert "had already been saved (Consent version 1.0)" in second.content.decode()
    assert Consent.objects.filter(patient=patient).count() == 1


def test_the_database_refuses_a_second_consent_to_the_same_version(consented_patient):
    consent = consented_patient.consents.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(
            patient=consented_patient,
            consent_version=consent.consent_version,
            signed_at=consent.signed_at,
            obtained_by=consent.obtained_by,
        )


@pytest.mark.parametrize(
    ("name", "model", "values"),
    [
        ("ae", AdverseEvent, lambda: ae_values(onset=timezone.localdate())),
        ("cm", ConcomitantMedication, lambda: cm_values(start=timezone.localdate())),
    ],
)
def test_a_log_entry_posted_twice_is_recorded_once(
    client, consented_patient, andrologist, name, model, values
):
    client.force_login(andrologist)
    url = reverse(f"followup:{name}-create", args=[consented_patient.uuid])
    data = {**as_post(values()), "form_token": _token(client, url)}
    assert client.post(url, data).status_code == 302
    second = client.post(url, data, follow=True)
    assert "Nothing was created twice" in second.content.decode()
    assert model.objects.filter(patient=consented_patient).count() == 1


def test_a_query_raised_twice_is_raised_once(
    client, consented_patient, screening_visit, andrologist, monitor
):
    save_crf("examination", screening_visit, andrologist)
    client.force_login(monitor)
    url = reverse(
        "monitoring:query-open",
        args=[consented_patient.uuid, screening_visit.uuid, "examination", 1],
    )
    data = {"field_name": "weight_kg", "question": "Check", "form_token": _token(client, url)}
    first = client.post(url, data)
    second = client.post(url, data)
    assert first.url == second.url
    assert DataQuery.objects.count() == 1


def test_every_submit_button_disables_itself_after_one_click(client, andrologist):
    """Progressive enhancement: the page's script (static/js/forms.js) is on every page."""
    client.force_login(andrologist)
    html = client.get(reverse("patients:patient-enrol")).content.decode()
    assert re.search(r'<script src="/static/js/forms\.js', html)
