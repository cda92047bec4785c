from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEntry
from labs.models import SemenAnalysis
from monitoring import services
from monitoring.models import Signature
from monitoring.selectors import signature_status
from patients import services as patient_services

from ..audit.test_part11 import _sign
from ..factories import complete_screening, post_data, save_crf


def test_signing_a_visit_through_the_page_locks_its_forms(
    client, consented_patient, screening_visit, andrologist
):
    complete_screening(screening_visit, andrologist)
    client.force_login(andrologist)
    url = reverse("monitoring:sign-visit", args=[consented_patient.uuid, screening_visit.uuid])
    page = client.get(url).content.decode()
    assert "I confirm the data are accurate and complete" in page and "10 form(s)" in page
    response = client.post(
        url,
        {
            "username": "alice",
            "password": "correct-horse-battery",
            "meaning": "approval",
            "agree": "on",
        },
        follow=True,
    )
    assert "Visit SCR signed" in response.content.decode()
    signature = Signature.objects.get()
    assert (
        signature.scope == "visit"
        and len(signature.covered) == 10
        and len(signature.record_hash) == 64
    )
    form_url = reverse(
        "patients:crf-edit", args=[consented_patient.uuid, screening_visit.uuid, "examination", 1]
    )
    form = client.get(form_url).content.decode()
    assert 'data-testid="locked"' in form and "<fieldset disabled" in form
    response = client.post(
        form_url, {**post_data("examination", weight_kg="99"), "reason_for_change": "x"}
    )
    assert "is locked" in response.content.decode()


def test_a_locked_form_refuses_edits_through_the_service(
    rf, consented_patient, screening_visit, andrologist
):
    complete_screening(screening_visit, andrologist)
    _sign(rf, andrologist, consented_patient, screening_visit)
    record = SemenAnalysis.objects.get(sequence=2)
    record.volume_ml = Decimal("4")
    with pytest.raises(ValidationError, match="locked"):
        patient_services.crf_save(record=record, user=andrologist, reason="typo")
    with pytest.raises(ValidationError, match="locked"):
        patient_services.crf_void(record=record, user=andrologist, reason="duplicate")


def test_an_admin_unlock_voids_the_signature_and_allows_the_correction(
    client, rf, consented_patient, screening_visit, andrologist, admin_user
):
    complete_screening(screening_visit, andrologist)
    signature = _sign(rf, andrologist, consented_patient, screening_visit)
    client.force_login(andrologist)
    assert (
        client.post(
            reverse("monitoring:signature-unlock", args=[signature.uuid]), {"reason": "x"}
        ).status_code
        == 403
    )
    client.force_login(admin_user)
    client.post(
        reverse("monitoring:signature-unlock", args=[signature.uuid]),
        {"reason": "Weight transcription error"},
    )
    signature.refresh_from_db()
    assert signature_status(signature) == "voided"
    unlock = AuditEntry.objects.filter(action="unlock", field_name="reason").get()
    assert unlock.reason == "Weight transcription error" and unlock.user == admin_user
    record = SemenAnalysis.objects.get(sequence=1)
    record.volume_ml = Decimal("2.9")
    patient_services.crf_save(record=record, user=andrologist, reason="Transcription error")
    # Re-signing is possible and needed.
    again = _sign(rf, andrologist, consented_patient, screening_visit)
    assert signature_status(again) == "valid" and again.record_hash != signature.record_hash


def test_signing_needs_a_complete_visit_and_closed_queries(
    rf, consented_patient, screening_visit, andrologist, monitor
):
    exam = save_crf("examination", screening_visit, andrologist)
    with pytest.raises(ValidationError, match="Every form of the visit"):
        _sign(rf, andrologist, consented_patient, screening_visit)
    for code in ("eligibility", "medical_history", "hormones", "karyotype", "azf", "biopsy"):
        save_crf(code, screening_visit, andrologist)
    for seq in (1, 2, 3):
        save_crf("semen_analysis", screening_visit, andrologist, sequence=seq)
    services.query_open(record=exam, field_name="", question="Check?", user=monitor)
    with pytest.raises(ValidationError, match="still open"):
        _sign(rf, andrologist, consented_patient, screening_visit)


def test_a_casebook_signature_locks_every_visit(
    rf, consented_patient, screening_visit, andrologist
):
    save_crf("examination", screening_visit, andrologist)
    signature = _sign(rf, andrologist, consented_patient, None)
    assert signature.scope == "casebook" and signature.visit is None
    with pytest.raises(ValidationError, match="casebook .* locked|locked"):
        save_crf("medical_history", screening_visit, andrologist)


def test_only_investigators_sign(client, consented_patient, screening_visit, coordinator, monitor):
    url = reverse("monitoring:sign-casebook", args=[consented_patient.uuid])
    for user in (coordinator, monitor):
        client.force_login(user)
        assert client.get(url).status_code == 403
