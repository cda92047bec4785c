"""A casebook signature covers the patient's logs (adverse events, concomitant medications)
as well as the forms: a log entry added or changed after signing invalidates it (P11-13)."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from followup.models import ConcomitantMedication
from followup.services import adverse_event_create, concomitant_medication_create
from monitoring.selectors import signature_status

from ..audit.test_part11 import _sign
from ..factories import complete_screening
from ..followup.factories import ae_values, cm_values


def yesterday():
    return timezone.localdate() - timedelta(days=1)


def test_the_casebook_signature_lists_and_hashes_the_log_entries(
    rf, andrologist, consented_patient, screening_visit
):
    complete_screening(screening_visit, andrologist)
    medication = concomitant_medication_create(
        patient=consented_patient, data=cm_values(start=yesterday()), user=andrologist
    )
    signature = _sign(rf, andrologist, consented_patient)
    assert ["log", "followup.concomitantmedication", 1, medication.pk] in signature.covered
    assert len(signature.covered) == 11  # 10 screening forms and the medication
    assert signature_status(signature) == "valid"
    # A change made outside the application shows.
    ConcomitantMedication.objects.filter(pk=medication.pk).update(indication="forged")
    assert signature_status(signature) == "invalidated"


def test_an_adverse_event_after_the_casebook_signature_asks_for_a_new_signature(
    rf, client, andrologist, consented_patient, screening_visit
):
    complete_screening(screening_visit, andrologist)
    visit_signature = _sign(rf, andrologist, consented_patient, screening_visit)
    casebook = _sign(rf, andrologist, consented_patient)
    # Safety data is never blocked by a signature; the investigator re-signs after review.
    adverse_event_create(
        patient=consented_patient, data=ae_values(onset=yesterday()), user=andrologist
    )
    assert signature_status(casebook) == "invalidated"
    assert signature_status(visit_signature) == "valid"  # a visit signature covers its forms
    client.force_login(andrologist)
    html = client.get(
        reverse("patients:patient-detail", args=[consented_patient.uuid])
    ).content.decode()
    assert "invalidated: data changed since signing, re-sign required" in html
