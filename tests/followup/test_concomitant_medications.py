"""The concomitant-medication log (CDASH CM): numbered per patient, prior medications
accepted, hormone-active treatments classified, written only with a valid consent, never
dated after the end of study, locked by the casebook signature, audited, changed with a
reason, voided but never deleted."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from followup import services
from followup.models import ConcomitantMedication
from monitoring.services import signature_unlock
from patients.services import consent_withdraw

from ..audit.test_part11 import _sign
from ..factories import save_crf
from .factories import as_post, cm_values, save, treated_patient

TODAY = timezone.localdate


def _create(patient, user, **changes):
    changes.setdefault("start", TODAY() - timedelta(days=2))
    return services.concomitant_medication_create(
        patient=patient, data=cm_values(**changes), user=user
    )


def _errors(patient, user, **changes) -> dict:
    with pytest.raises(ValidationError) as exc:
        _create(patient, user, **changes)
    return exc.value.message_dict


# ---- the rules of one entry ------------------------------------------------------------------


def test_medications_are_numbered_per_patient_and_audited(
    consented_patient, other_patient, andrologist, other_andrologist
):
    first = _create(consented_patient, andrologist)
    second = _create(consented_patient, andrologist, medication="Paracetamol", hormone_class="NONE")
    elsewhere = _create(other_patient, other_andrologist)
    assert (first.number, second.number, elsewhere.number) == (1, 2, 1)
    assert AuditEntry.objects.filter(
        object_id=first.pk,
        form_code="concomitant_medication",
        field_name="medication",
        action="create",
        new_value="Clomiphene citrate",
    ).exists()


def test_a_medication_has_an_end_date_or_is_ongoing_and_ends_after_it_starts(
    consented_patient, andrologist
):
    start = TODAY() - timedelta(days=10)
    assert _errors(consented_patient, andrologist, start=start, ongoing=False)["end_date"] == [
        "Give the end date, or tick ongoing."
    ]
    assert _errors(
        consented_patient, andrologist, start=start, end_date=TODAY() - timedelta(days=1)
    )["end_date"] == ["An ongoing medication has no end date: clear it or untick ongoing."]
    assert _errors(
        consented_patient,
        andrologist,
        start=start,
        ongoing=False,
        end_date=start - timedelta(days=1),
    )["end_date"] == ["The end date cannot precede the start."]
    stopped = _create(consented_patient, andrologist, start=start, ongoing=False, end_date=start)
    assert stopped.end_date == stopped.start_date and not stopped.ongoing


def test_a_dose_needs_its_unit_and_a_unit_its_dose(consented_patient, andrologist):
    assert _errors(consented_patient, andrologist, dose_unit="")["dose_unit"] == [
        "Give the unit of the dose."
    ]
    assert _errors(consented_patient, andrologist, dose=None)["dose"] == [
        "Give the dose, or clear its unit."
    ]
    assert "above 0" in _errors(consented_patient, andrologist, dose=0)["dose"][0]
    unknown_dose = _create(consented_patient, andrologist, dose=None, dose_unit="")
    assert unknown_dose.dose_label == ""


def test_another_route_or_frequency_is_named(consented_patient, andrologist):
    errors = _errors(consented_patient, andrologist, route="OTHER", frequency="OTHER")
    assert errors["route_other"] == ["Name the route."]
    assert errors["frequency_other"] == ["Describe the frequency."]
    medication = _create(
        consented_patient,
        andrologist,
        route="OTHER",
        route_other="Nasal spray",
        frequency="OTHER",
        frequency_other="3 times a week",
    )
    assert (medication.route_label, medication.frequency_label) == (
        "Nasal spray",
        "3 times a week",
    )


def test_a_known_hormone_drug_cannot_be_filed_as_not_hormone_active(consented_patient, andrologist):
    errors = _errors(
        consented_patient, andrologist, medication="Letrozole 2.5 mg", hormone_class="NONE"
    )
    assert errors["hormone_class"] == [
        "Letrozole 2.5 mg is hormone-active: choose 'Aromatase inhibitor (anastrozole, "
        "letrozole)' (or the class that applies)."
    ]
    hcg = _create(consented_patient, andrologist, medication="Pregnyl (hCG)", hormone_class="HCG")
    assert hcg.is_hormone_active


def test_a_medication_started_before_consent_is_recorded_as_prior(
    client, consented_patient, andrologist
):
    # consented_patient signed 30 days ago; clomiphene was stopped a year ago.
    medication = _create(
        consented_patient,
        andrologist,
        start=TODAY() - timedelta(days=500),
        ongoing=False,
        end_date=TODAY() - timedelta(days=365),
    )
    assert medication.start_date < consented_patient.consents.get().signed_at.date()
    client.force_login(andrologist)
    html = client.get(reverse("followup:cm-list", args=[consented_patient.uuid])).content.decode()
    assert ">prior</span>" in html


def test_dates_cannot_be_in_the_future(consented_patient, andrologist):
    assert _errors(consented_patient, andrologist, start=TODAY() + timedelta(days=1))[
        "start_date"
    ] == ["The start date cannot be in the future."]


# ---- consent, end of study, lock ------------------------------------------------------------


def test_nothing_is_recorded_without_a_consent(patient, andrologist):
    with pytest.raises(ValidationError) as exc:
        _create(patient, andrologist)
    assert exc.value.messages == [
        "No consent is recorded: record the patient's consent before entering any data."
    ]
    assert not ConcomitantMedication.objects.exists()


def test_the_page_refuses_an_entry_without_a_consent(client, patient, andrologist):
    client.force_login(andrologist)
    url = reverse("followup:cm-create", args=[patient.uuid])
    page = client.get(url).content.decode()
    assert 'data-testid="consent-block"' in page and "<fieldset disabled>" in page
    response = client.post(url, as_post(cm_values(start=TODAY())))
    assert response.status_code == 200
    # The service's refusal, on the form, besides the banner the page always shows.
    message = "No consent is recorded: record the patient&#x27;s consent before entering any data."
    assert response.content.decode().count(message) == 2
    assert not ConcomitantMedication.objects.exists()


def test_nothing_is_recorded_or_changed_after_withdrawal(consented_patient, andrologist):
    medication = _create(consented_patient, andrologist)
    consent_withdraw(
        consent=consented_patient.consents.get(),
        withdrawn_on=TODAY(),
        reason="No longer wishes to take part",
        user=andrologist,
    )
    with pytest.raises(ValidationError, match="Consent was withdrawn"):
        _create(consented_patient, andrologist)
    with pytest.raises(ValidationError, match="Consent was withdrawn"):
        services.log_entry_void(
            services.MEDICATIONS, entry=medication, user=andrologist, reason="Duplicate"
        )


def test_nothing_is_dated_after_the_end_of_study(site, andrologist):
    patient = treated_patient(site, andrologist, procedure_days_ago=200)
    eos = services.end_of_study_visit_open(patient=patient, user=andrologist)
    ended_on = TODAY() - timedelta(days=30)
    save("end_of_study", eos, andrologist, on=ended_on)
    errors = _errors(patient, andrologist, start=ended_on + timedelta(days=1))
    assert errors["start_date"][0].startswith("The patient's participation ended on")
    errors = _errors(
        patient,
        andrologist,
        start=ended_on - timedelta(days=20),
        ongoing=False,
        end_date=ended_on + timedelta(days=5),
    )
    assert "participation ended" in errors["end_date"][0]
    # A medication taken before the end is still recorded (found at the last visit).
    late = _create(patient, andrologist, start=ended_on - timedelta(days=20))
    assert late.pk and late.ongoing


def test_a_casebook_signature_locks_the_log_until_unlocked(
    rf, consented_patient, screening_visit, andrologist, admin_user
):
    medication = _create(consented_patient, andrologist)
    save_crf("examination", screening_visit, andrologist)
    signature = _sign(rf, andrologist, consented_patient, None)
    with pytest.raises(ValidationError, match="casebook was signed .* locked"):
        _create(consented_patient, andrologist)
    with pytest.raises(ValidationError, match="locked"):
        services.log_entry_update(
            services.MEDICATIONS,
            entry=medication,
            data={"dose": 100},
            user=andrologist,
            reason="Dose doubled",
        )
    with pytest.raises(ValidationError, match="locked"):
        services.log_entry_void(
            services.MEDICATIONS, entry=medication, user=andrologist, reason="Duplicate"
        )
    signature_unlock(signature=signature, reason="Medication log to complete", user=admin_user)
    assert _create(consented_patient, andrologist).number == 2


def test_a_visit_signature_does_not_lock_the_log(
    rf, consented_patient, screening_visit, andrologist
):
    from ..factories import complete_screening

    complete_screening(screening_visit, andrologist)
    _sign(rf, andrologist, consented_patient, screening_visit)
    assert _create(consented_patient, andrologist).number == 1


# ---- changes, voiding, history ---------------------------------------------------------------


def test_a_change_needs_a_reason_and_writes_old_and_new(consented_patient, andrologist):
    medication = _create(consented_patient, andrologist)
    with pytest.raises(ValidationError) as exc:
        services.log_entry_update(
            services.MEDICATIONS, entry=medication, data={"dose": 100}, user=andrologist, reason=" "
        )
    assert "reason_for_change" in exc.value.message_dict
    services.log_entry_update(
        services.MEDICATIONS,
        entry=medication,
        data={"dose": 100},
        user=andrologist,
        reason="Dose doubled",
    )
    row = AuditEntry.objects.get(object_id=medication.pk, field_name="dose", action="update")
    assert (row.old_value, row.new_value, row.reason) == ("50", "100", "Dose doubled")
    assert row.form_code == "concomitant_medication" and row.patient == consented_patient


def test_a_voided_medication_stays_in_the_log(client, consented_patient, andrologist):
    medication = _create(consented_patient, andrologist)
    services.log_entry_void(
        services.MEDICATIONS, entry=medication, user=andrologist, reason="Wrong patient"
    )
    assert ConcomitantMedication.objects.filter(pk=medication.pk, voided_at__isnull=False).exists()
    row = AuditEntry.objects.get(object_id=medication.pk, action="void", field_name="void_reason")
    assert row.reason == "Wrong patient"
    with pytest.raises(ValidationError, match="voided"):
        services.log_entry_update(
            services.MEDICATIONS, entry=medication, data={"dose": 100}, user=andrologist, reason="x"
        )
    client.force_login(andrologist)
    html = client.get(reverse("followup:cm-list", args=[consented_patient.uuid])).content.decode()
    assert "voided: Wrong patient" in html


def test_a_medication_has_its_history_page(client, consented_patient, andrologist):
    medication = _create(consented_patient, andrologist)
    services.log_entry_update(
        services.MEDICATIONS,
        entry=medication,
        data={"frequency": "BID"},
        user=andrologist,
        reason="Reassessed",
    )
    client.force_login(andrologist)
    form = client.get(
        reverse("followup:cm-edit", args=[consented_patient.uuid, medication.uuid])
    ).content.decode()
    assert 'data-testid="history-link"' in form
    history = client.get(
        reverse("audit:record-history", args=["followup.ConcomitantMedication", medication.uuid])
    ).content.decode()
    assert "frequency" in history and "Reassessed" in history


# ---- the pages -------------------------------------------------------------------------------


def test_recording_a_medication_in_the_browser_keeps_typed_values_on_error(
    client, consented_patient, andrologist
):
    client.force_login(andrologist)
    url = reverse("followup:cm-create", args=[consented_patient.uuid])
    assert "Follitropin alfa (recombinant FSH)" in client.get(url).content.decode()  # suggestion
    data = as_post(cm_values(start=TODAY() - timedelta(days=3), dose_unit=""))
    response = client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Give the unit of the dose." in html
    assert 'value="Clomiphene citrate"' in html
    assert not ConcomitantMedication.objects.exists()
    data["dose_unit"] = "mg"
    response = client.post(url, data, follow=True)
    assert "Medication 1 (Clomiphene citrate) recorded." in response.content.decode()
    medication = ConcomitantMedication.objects.get()
    edit = reverse("followup:cm-edit", args=[consented_patient.uuid, medication.uuid])
    response = client.post(edit, {**data, "dose": "100"})
    assert "This field is required." in response.content.decode()  # the reason
    response = client.post(edit, {**data, "dose": "100", "reason_for_change": "Dose doubled"})
    assert response.status_code == 302
    medication.refresh_from_db()
    assert medication.dose == 100


def test_voiding_on_the_page_needs_a_reason(client, consented_patient, coordinator):
    medication = _create(consented_patient, coordinator)
    client.force_login(coordinator)
    url = reverse("followup:cm-void", args=[consented_patient.uuid, medication.uuid])
    assert "This field is required." in client.post(url, {"reason": ""}).content.decode()
    response = client.post(url, {"reason": "Duplicate entry"}, follow=True)
    assert "Medication 1 voided." in response.content.decode()
    medication.refresh_from_db()
    assert medication.void_reason == "Duplicate entry"


@pytest.mark.parametrize("role_fixture", ["monitor", "lab_technician"])
def test_monitors_and_lab_technicians_read_but_do_not_record(
    client, request, consented_patient, andrologist, role_fixture
):
    medication = _create(consented_patient, andrologist)
    client.force_login(request.getfixturevalue(role_fixture))
    args = [consented_patient.uuid]
    assert client.get(reverse("followup:cm-list", args=args)).status_code == 200
    edit = reverse("followup:cm-edit", args=[*args, medication.uuid])
    page = client.get(edit)
    assert page.status_code == 200 and "<fieldset disabled>" in page.content.decode()
    assert client.post(edit, {"medication": "x"}).status_code == 403
    assert client.get(reverse("followup:cm-create", args=args)).status_code == 403
    void = reverse("followup:cm-void", args=[*args, medication.uuid])
    assert client.post(void, {"reason": "x"}).status_code == 403
    medication.refresh_from_db()
    assert medication.voided_at is None and medication.medication == "Clomiphene citrate"


def test_another_sites_medications_are_not_found(
    client, other_patient, other_andrologist, andrologist
):
    medication = _create(other_patient, other_andrologist)
    client.force_login(andrologist)
    for url in (
        reverse("followup:cm-list", args=[other_patient.uuid]),
        reverse("followup:cm-create", args=[other_patient.uuid]),
        reverse("followup:cm-edit", args=[other_patient.uuid, medication.uuid]),
        reverse("followup:cm-void", args=[other_patient.uuid, medication.uuid]),
        reverse("audit:record-history", args=["followup.ConcomitantMedication", medication.uuid]),
    ):
        assert client.get(url).status_code == 404, url


def test_the_list_page_uses_a_bounded_number_of_queries(
    client, consented_patient, andrologist, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _create(consented_patient, andrologist)
    client.force_login(andrologist)
    url = reverse("followup:cm-list", args=[consented_patient.uuid])
    client.get(url)  # warm caches
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for _ in range(5):
        _create(consented_patient, andrologist, medication="Paracetamol", hormone_class="NONE")
    # 17: the session guard (a locked or deactivated account is signed out) and the session's
    # verified device (two-factor sign-in) are one each per request.
    with django_assert_max_num_queries(17), CaptureQueriesContext(connection) as six:
        html = client.get(url).content.decode()
    assert html.count("data-cm=") == 6
    assert len(six) == len(one)


def test_the_follow_up_and_patient_pages_link_the_log(client, site, andrologist):
    patient = treated_patient(site, andrologist, procedure_days_ago=20)
    _create(patient, andrologist)
    _create(patient, andrologist, medication="Paracetamol", hormone_class="NONE")
    voided = _create(patient, andrologist, medication="Ibuprofen", hormone_class="NONE")
    services.log_entry_void(
        services.MEDICATIONS, entry=voided, user=andrologist, reason="Duplicate"
    )
    client.force_login(andrologist)
    html = client.get(reverse("followup:patient-followup", args=[patient.uuid])).content.decode()
    assert "Concomitant medications (2)" in html
    assert "2 recorded · <strong" in html and "1 hormone-active" in html
    log_url = reverse("followup:cm-list", args=[patient.uuid])
    assert f'href="{log_url}"' in html
    detail = client.get(reverse("patients:patient-detail", args=[patient.uuid])).content.decode()
    assert f'href="{log_url}"' in detail
