"""Hard limits, soft flags and cross-field rules of every screening CRF, through the service
layer (as an import would) and through the web form (as a clinician would)."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEntry
from core import crf
from labs.models import HormoneProfile, SemenAnalysis
from patients import services
from patients.models import Eligibility, Examination

from ..factories import VALID, post_data, save_crf

SCREENING_FORMS = [
    "eligibility",
    "medical_history",
    "examination",
    "semen_analysis",
    "hormones",
    "karyotype",
    "azf",
    "biopsy",
]


def _limit_cases(kind):
    """(form, field, value) just outside each declared limit, of the field's own type."""
    for code in SCREENING_FORMS:
        model = crf.get(code).model
        for name, limits in model.limits.items():
            is_int = "Integer" in model._meta.get_field(name).get_internal_type()
            step = 1 if is_int else Decimal("0.5")

            def value(bound, direction, is_int=is_int, step=step):
                v = Decimal(str(bound)) + direction * step
                return int(v) if is_int else v

            if kind == "hard" and limits.hard_max is not None:
                yield code, name, value(limits.hard_max, 1)
            if kind == "hard" and limits.hard_min is not None and limits.hard_min > 0:
                yield code, name, value(limits.hard_min, -1)
            if kind == "soft" and limits.soft_max is not None:
                yield code, name, value(limits.soft_max, 1)
            if kind == "soft" and limits.soft_min is not None:
                yield code, name, value(limits.soft_min, -1)


def test_every_screening_form_is_registered_and_has_valid_sample_values():
    assert set(SCREENING_FORMS) <= set(VALID)
    for code in SCREENING_FORMS:
        assert crf.is_registered(code)


def test_valid_values_save_for_every_screening_form(screening_visit, andrologist):
    for code in SCREENING_FORMS:
        record = save_crf(code, screening_visit, andrologist)
        assert record.pk and record.flags() == {}


@pytest.mark.parametrize(("code", "field", "value"), list(_limit_cases("hard")))
def test_a_value_beyond_the_plausible_range_is_rejected_on_its_field(
    code, field, value, screening_visit, andrologist
):
    if field in (
        "concentration",
        "progressive_pct",
        "non_progressive_pct",
        "immotile_pct",
        "normal_forms_pct",
    ):
        extra = {"sperm_seen": "FRESH"}
    elif field == "children_from_previous_marriage":
        extra = {"previous_marriage": "Y"}
    else:
        extra = {}
    with pytest.raises(ValidationError) as exc:
        save_crf(code, screening_visit, andrologist, **{field: value, **extra})
    message = exc.value.message_dict[field][0]
    assert "must be between" in message or "cannot be" in message
    assert not crf.get(code).model.objects.exists()


@pytest.mark.parametrize(("code", "field", "value"), list(_limit_cases("soft")))
def test_an_unexpected_value_saves_but_is_flagged_for_review(
    code, field, value, screening_visit, andrologist
):
    record = save_crf(code, screening_visit, andrologist, **{field: value})
    assert field in record.flags()
    assert "outside the expected" in record.flags()[field]


def test_the_form_shows_the_hard_limit_message_and_keeps_every_typed_value(
    client, consented_patient, screening_visit, andrologist
):
    client.force_login(andrologist)
    url = reverse(
        "patients:crf-edit",
        args=[consented_patient.uuid, screening_visit.uuid, "semen_analysis", 1],
    )
    response = client.post(
        url, post_data("semen_analysis", abstinence_days="45", volume_ml="3.3", ph="7.9")
    )
    html = response.content.decode()
    assert "Abstinence (days) must be between 0 and 30 days." in html
    assert 'value="45"' in html and 'value="3.3"' in html and 'value="7.9"' in html
    assert not SemenAnalysis.objects.exists()


def test_a_soft_flag_shows_on_the_form_and_the_patient_page(
    client, consented_patient, screening_visit, andrologist
):
    client.force_login(andrologist)
    url = reverse(
        "patients:crf-edit",
        args=[consented_patient.uuid, screening_visit.uuid, "semen_analysis", 1],
    )
    response = client.post(url, post_data("semen_analysis", abstinence_days="10"), follow=True)
    page = response.content.decode()
    assert (
        "flagged for review" in page
        and "Abstinence (days) 10 days is outside the expected 2-7 days" in page
    )
    assert 'data-status="flagged"' in page
    assert "outside the expected" in client.get(url).content.decode()


# ---- cross-field rules -------------------------------------------------------------------


def test_concentration_must_be_zero_when_no_sperm_was_seen(screening_visit, andrologist):
    with pytest.raises(ValidationError) as exc:
        save_crf("semen_analysis", screening_visit, andrologist, concentration=Decimal("1.5"))
    assert exc.value.message_dict["concentration"] == [
        "Concentration must be 0 when no sperm was seen."
    ]


def test_no_sperm_requires_the_centrifuged_pellet_examined(screening_visit, andrologist):
    with pytest.raises(ValidationError) as exc:
        save_crf("semen_analysis", screening_visit, andrologist, pellet_examined="N")
    assert "pellet was examined" in exc.value.message_dict["pellet_examined"][0]


def test_motility_categories_must_add_up_to_100(screening_visit, andrologist):
    with pytest.raises(ValidationError) as exc:
        save_crf(
            "semen_analysis",
            screening_visit,
            andrologist,
            sperm_seen="FRESH",
            concentration=Decimal("0.4"),
            progressive_pct=Decimal("10"),
            non_progressive_pct=Decimal("10"),
            immotile_pct=Decimal("50"),
        )
    assert "add up to 100%" in exc.value.message_dict["immotile_pct"][0]


def test_total_count_is_volume_times_concentration(screening_visit, andrologist):
    record = save_crf(
        "semen_analysis",
        screening_visit,
        andrologist,
        sperm_seen="FRESH",
        volume_ml=Decimal("2.5"),
        concentration=Decimal("0.4"),
    )
    assert record.total_count == Decimal("1.00")


def test_cryptorchidism_needs_its_side_and_orchiopexy(screening_visit, andrologist):
    with pytest.raises(ValidationError) as exc:
        save_crf("medical_history", screening_visit, andrologist, cryptorchidism="Y")
    assert set(exc.value.message_dict) == {"cryptorchidism_side", "orchiopexy"}


def test_varicocele_needs_treated_answered(screening_visit, andrologist):
    with pytest.raises(ValidationError) as exc:
        save_crf("medical_history", screening_visit, andrologist, varicocele="Y")
    assert "varicocele_treated" in exc.value.message_dict


def test_a_mosaic_karyotype_needs_the_iscn_string(screening_visit, andrologist):
    with pytest.raises(ValidationError) as exc:
        save_crf("karyotype", screening_visit, andrologist, result="MOSAIC")
    assert "detail" in exc.value.message_dict
    assert save_crf(
        "karyotype", screening_visit, andrologist, result="MOSAIC", detail="47,XXY/46,XY"
    ).pk


def test_eligible_is_computed_from_all_criteria(screening_visit, andrologist):
    assert save_crf("eligibility", screening_visit, andrologist).eligible
    record = Eligibility.objects.get()
    record.excl03 = "Y"  # bleeding disorder
    assert not record.eligible


def test_bmi_and_testicular_size_are_derived(screening_visit, andrologist):
    exam = save_crf(
        "examination",
        screening_visit,
        andrologist,
        height_cm=Decimal("180"),
        weight_kg=Decimal("81"),
    )
    assert exam.bmi == Decimal("25.0")
    assert exam.testicular_size == "small"  # left testis 10 mL < 12 mL


def test_testosterone_in_nmol_per_litre_is_stored_in_ng_per_ml(
    client, consented_patient, screening_visit, andrologist
):
    client.force_login(andrologist)
    url = reverse(
        "patients:crf-edit", args=[consented_patient.uuid, screening_visit.uuid, "hormones", 1]
    )
    client.post(url, post_data("hormones", testosterone="10.4", testosterone_unit="nmol/L"))
    assert HormoneProfile.objects.get().testosterone == Decimal("3.00")  # 10.4 / 3.467


def test_testosterone_beyond_plausible_after_conversion_is_rejected(
    client, consented_patient, screening_visit, andrologist
):
    client.force_login(andrologist)
    url = reverse(
        "patients:crf-edit", args=[consented_patient.uuid, screening_visit.uuid, "hormones", 1]
    )
    response = client.post(
        url, post_data("hormones", testosterone="80", testosterone_unit="nmol/L")
    )
    assert "must be between 0 and 20 ng/mL" in response.content.decode()
    assert not HormoneProfile.objects.exists()


def test_a_form_not_expected_at_a_visit_cannot_be_saved_there(consented_patient, andrologist):
    d0 = consented_patient.visits.get(definition__code="D0")
    with pytest.raises(ValidationError, match="not part of visit D0"):
        save_crf("examination", d0, andrologist)


def test_a_fourth_screening_semen_analysis_is_refused(screening_visit, andrologist):
    with pytest.raises(ValidationError, match="expects 3"):
        save_crf("semen_analysis", screening_visit, andrologist, sequence=4)


def test_the_same_slot_cannot_be_created_twice(screening_visit, andrologist):
    save_crf("examination", screening_visit, andrologist)
    with pytest.raises(ValidationError):
        save_crf("examination", screening_visit, andrologist)
    assert Examination.objects.count() == 1


# ---- corrections and the audit trail ------------------------------------------------------


def test_a_correction_without_a_reason_is_refused(screening_visit, andrologist):
    exam = save_crf("examination", screening_visit, andrologist)
    exam.weight_kg = Decimal("85")
    with pytest.raises(ValidationError) as exc:
        services.crf_save(record=exam, user=andrologist, reason="")
    assert "reason_for_change" in exc.value.message_dict
    assert Examination.objects.get().weight_kg == Decimal("80")


def test_each_changed_field_writes_one_audit_row_with_old_and_new(screening_visit, andrologist):
    exam = save_crf("examination", screening_visit, andrologist)
    created = AuditEntry.objects.filter(object_id=exam.pk, action="create", form_code="examination")
    assert created.filter(field_name="weight_kg", new_value="80").exists()
    exam.weight_kg = Decimal("85")
    exam.left_volume_ml = Decimal("11")
    services.crf_save(record=exam, user=andrologist, reason="Transcription error")
    updates = AuditEntry.objects.filter(object_id=exam.pk, action="update", form_code="examination")
    assert sorted((u.field_name, u.old_value, u.new_value) for u in updates) == [
        ("left_volume_ml", "10", "11"),
        ("weight_kg", "80", "85"),
    ]
    assert {u.reason for u in updates} == {"Transcription error"}
    assert {u.user_name for u in updates} == {"alice"}


def test_the_web_form_asks_for_the_reason_when_editing(
    client, consented_patient, screening_visit, andrologist
):
    save_crf("examination", screening_visit, andrologist)
    client.force_login(andrologist)
    url = reverse(
        "patients:crf-edit", args=[consented_patient.uuid, screening_visit.uuid, "examination", 1]
    )
    response = client.post(url, post_data("examination", weight_kg="85"))
    html = response.content.decode()
    assert "This field is required" in html and 'value="85"' in html
    client.post(
        url, {**post_data("examination", weight_kg="85"), "reason_for_change": "Re-weighed"}
    )
    assert Examination.objects.get().weight_kg == Decimal("85")


def test_a_monitor_can_read_but_not_enter_data(client, consented_patient, screening_visit, monitor):
    client.force_login(monitor)
    url = reverse(
        "patients:crf-edit", args=[consented_patient.uuid, screening_visit.uuid, "examination", 1]
    )
    assert "disabled" in client.get(url).content.decode()
    assert client.post(url, post_data("examination")).status_code == 403
    assert not Examination.objects.exists()
