from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from patients import services
from patients.models import Examination
from patients.selectors import consent_status
from trial.models import ConsentVersion

from ..conftest import give_consent
from ..factories import crf_values, post_data, save_crf


def _crf_url(patient, code, seq=1, visit="SCR"):
    v = patient.visits.get(definition__code=visit)
    return reverse("patients:crf-edit", args=[patient.uuid, v.uuid, code, seq])


def test_no_clinical_row_can_be_created_without_consent_through_the_service(patient, andrologist):
    visit = patient.visits.get(definition__code="SCR")
    with pytest.raises(ValidationError, match="No consent is recorded"):
        save_crf("examination", visit, andrologist)
    assert not Examination.objects.exists()


def test_no_clinical_row_can_be_created_without_consent_through_the_form(
    client, patient, andrologist
):
    client.force_login(andrologist)
    response = client.post(
        _crf_url(patient, "examination"), post_data("examination", height_cm="181")
    )
    html = response.content.decode()
    assert "No consent is recorded" in html
    assert 'value="181"' in html  # what was typed is still there
    assert not Examination.objects.exists()


def test_recording_consent_with_the_signed_scan_opens_data_entry(
    client, patient, andrologist, protocol
):
    client.force_login(andrologist)
    scan = SimpleUploadedFile(
        "signed.pdf", b"%PDF-1.4 signed\n%%EOF\n", content_type="application/pdf"
    )
    response = client.post(
        reverse("patients:consent-create", args=[patient.uuid]),
        {
            "consent_version": ConsentVersion.objects.get().pk,
            "signed_at": (timezone.localtime() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            "obtained_by": andrologist.pk,
            "witness_name": "Nurse Hoda",
            "patient_copy_given": "on",
            "document": scan,
        },
        follow=True,
    )
    assert "Consent recorded" in response.content.decode()
    consent = patient.consents.get()
    assert consent.document.name.endswith(".pdf") and consent.witness_name == "Nurse Hoda"
    assert consent_status(patient=patient).allows_data_entry
    document = client.get(reverse("patients:consent-document", args=[patient.uuid, consent.uuid]))
    assert b"".join(document.streaming_content) == b"%PDF-1.4 signed\n%%EOF\n"
    # The screening window is anchored on the consent date.
    scr = patient.visits.get(definition__code="SCR")
    assert scr.window_end - scr.window_start == timedelta(days=90)


def test_a_consent_scan_must_be_a_pdf_or_image(client, patient, andrologist, protocol):
    client.force_login(andrologist)
    response = client.post(
        reverse("patients:consent-create", args=[patient.uuid]),
        {
            "consent_version": ConsentVersion.objects.get().pk,
            "signed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "obtained_by": andrologist.pk,
            "document": SimpleUploadedFile("x.exe", b"MZ", content_type="application/x-msdownload"),
        },
    )
    assert "PDF, JPEG or PNG" in response.content.decode()
    assert not patient.consents.exists()


def test_consent_cannot_be_signed_in_the_future_or_before_the_version_took_effect(
    patient, andrologist, protocol
):
    version = ConsentVersion.objects.get()
    with pytest.raises(ValidationError, match="cannot be in the future"):
        services.consent_record(
            patient=patient,
            consent_version=version,
            obtained_by=andrologist,
            signed_at=timezone.now() + timedelta(days=1),
            user=andrologist,
        )
    with pytest.raises(ValidationError, match="only took effect"):
        services.consent_record(
            patient=patient,
            consent_version=version,
            obtained_by=andrologist,
            user=andrologist,
            signed_at=timezone.make_aware(timezone.datetime(2019, 6, 1, 10, 0)),
        )


def test_withdrawal_stops_data_entry_but_reading_stays_possible(
    client, consented_patient, andrologist
):
    visit = consented_patient.visits.get(definition__code="SCR")
    save_crf("examination", visit, andrologist)
    consent = consented_patient.consents.get()
    services.consent_withdraw(
        consent=consent,
        withdrawn_on=timezone.localdate(),
        reason="Does not wish to continue",
        user=andrologist,
    )
    with pytest.raises(ValidationError, match="withdrawn"):
        save_crf("medical_history", visit, andrologist)
    client.force_login(andrologist)
    page = client.get(
        reverse("patients:patient-detail", args=[consented_patient.uuid])
    ).content.decode()
    assert "Withdrawn" in page and "Does not wish to continue" in page
    form = client.get(_crf_url(consented_patient, "examination")).content.decode()
    assert 'value="176.0"' in form and "no further data can be entered" in form
    response = client.post(
        _crf_url(consented_patient, "medical_history"), post_data("medical_history")
    )
    assert "no further data can be entered" in response.content.decode()


def test_a_withdrawal_needs_a_reason_and_a_sensible_date(consented_patient, andrologist):
    consent = consented_patient.consents.get()
    with pytest.raises(ValidationError) as exc:
        services.consent_withdraw(
            consent=consent,
            withdrawn_on=timezone.localdate() + timedelta(days=2),
            reason=" ",
            user=andrologist,
        )
    assert set(exc.value.message_dict) == {"withdrawal_reason", "withdrawn_on"}


def test_a_new_consent_version_makes_re_consent_due(consented_patient, andrologist, protocol):
    visit = consented_patient.visits.get(definition__code="SCR")
    v2 = ConsentVersion.objects.create(
        protocol=protocol, version="2.0", effective_date=timezone.localdate() - timedelta(days=1)
    )
    status = consent_status(patient=consented_patient)
    assert status.state == "reconsent_due" and "2.0" in status.message
    with pytest.raises(ValidationError, match="must re-consent"):
        save_crf("examination", visit, andrologist)
    give_consent(consented_patient, andrologist, days_ago=0, version=v2)
    assert save_crf("examination", visit, andrologist).pk


def test_a_version_not_yet_in_effect_does_not_block_entry(consented_patient, andrologist, protocol):
    ConsentVersion.objects.create(
        protocol=protocol, version="3.0", effective_date=timezone.localdate() + timedelta(days=30)
    )
    assert consent_status(patient=consented_patient).allows_data_entry


def test_a_visit_date_cannot_precede_consent(client, consented_patient, andrologist):
    consent_day = consented_patient.consents.get().signed_on
    before = consent_day - timedelta(days=3)
    visit = consented_patient.visits.get(definition__code="SCR")
    with pytest.raises(ValidationError) as exc:
        save_crf("examination", visit, andrologist, assessment_date=before)
    assert "cannot precede the patient's consent" in exc.value.message_dict["assessment_date"][0]
    # A biopsy done years before the study is history, not a visit: allowed.
    assert save_crf("biopsy", visit, andrologist, assessment_date=date(2015, 3, 1)).pk
    client.force_login(andrologist)
    response = client.post(
        _crf_url(consented_patient, "hormones"),
        post_data("hormones", assessment_date=before, fsh="31.5"),
    )
    html = response.content.decode()
    assert "cannot precede the patient&#x27;s consent" in html and 'value="31.5"' in html


def test_dates_in_the_future_are_refused(consented_patient, andrologist):
    visit = consented_patient.visits.get(definition__code="SCR")
    with pytest.raises(ValidationError, match="future"):
        save_crf(
            "examination",
            visit,
            andrologist,
            **{
                **crf_values("examination"),
                "assessment_date": timezone.localdate() + timedelta(days=1),
            },
        )
