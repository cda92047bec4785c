"""Procedure day: bone-marrow aspirate, MSC preparation with its release decision, injection.
The release gate is tested through the service (as an import would) and through the web form
(as a clinician would); the derived aspiration-to-injection time is shown."""

from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from labs.models import Injection, MscPreparation, aspiration_to_injection, format_duration
from patients.models import Visit

from ..followup.factories import as_post, procedure_day, procedure_visit, save, values

TODAY = timezone.localdate


@pytest.fixture
def d0(consented_patient):
    return procedure_visit(consented_patient)


def _prepare(d0, user, **changes):
    save("bm_aspirate", d0, user, on=TODAY())
    return save("msc_preparation", d0, user, on=TODAY(), **changes)


def test_the_three_procedure_forms_are_saved_and_audited(d0, andrologist, lab_technician):
    save("bm_aspirate", d0, andrologist, on=TODAY())
    prep = save("msc_preparation", d0, lab_technician, on=TODAY())
    injection = save("injection", d0, andrologist, on=TODAY())
    assert prep.released and prep.flags() == {}
    assert injection.total_cells_million == Decimal("4.40")
    assert AuditEntry.objects.filter(form_code="injection", field_name="testes_injected").exists()


def test_an_implausible_aspirate_volume_is_rejected(d0, andrologist):
    with pytest.raises(ValidationError) as exc:
        save("bm_aspirate", d0, andrologist, on=TODAY(), volume_ml=Decimal("150"))
    assert exc.value.message_dict["volume_ml"] == [
        "Volume aspirated (mL) must be between 1 and 120 mL."
    ]


def test_unexpected_product_values_are_accepted_and_flagged(d0, andrologist):
    prep = _prepare(
        d0, andrologist, viability_pct=Decimal("91.0"), cell_count_million=Decimal("2.9")
    )
    flags = prep.flags()
    assert set(flags) == {"viability_pct", "cell_count_million"}
    assert flags["viability_pct"] == (
        "Viability (%, trypan blue) 91 % is outside the expected >= 95 % (check before release)."
    )
    assert "3.7-5.2" in flags["cell_count_million"]


def test_a_product_not_released_needs_a_reason(d0, andrologist):
    with pytest.raises(ValidationError) as exc:
        _prepare(d0, andrologist, release_decision="NOT_RELEASED")
    assert exc.value.message_dict["release_reason"] == [
        "Give the reason the product was not released."
    ]


def test_release_gate_the_injection_needs_a_preparation(d0, andrologist):
    save("bm_aspirate", d0, andrologist, on=TODAY())
    with pytest.raises(ValidationError) as exc:
        save("injection", d0, andrologist, on=TODAY())
    assert "Record the MSC preparation and its release decision" in str(exc.value)
    assert not Injection.objects.exists()


def test_release_gate_a_product_not_released_cannot_be_injected(d0, andrologist):
    _prepare(d0, andrologist, release_decision="NOT_RELEASED", release_reason="Viability 81%")
    with pytest.raises(ValidationError) as exc:
        save("injection", d0, andrologist, on=TODAY())
    assert exc.value.messages == [
        "The MSC product was not released (Viability 81%): it cannot be recorded as injected."
    ]
    assert not Injection.objects.exists()
    # No follow-up schedule either.
    assert not d0.patient.visits.filter(definition__code="M4").exists()


def test_release_gate_through_the_web_form(client, d0, andrologist):
    _prepare(d0, andrologist, release_decision="NOT_RELEASED", release_reason="Gram stain positive")
    client.force_login(andrologist)
    url = reverse("patients:crf-edit", args=[d0.patient.uuid, d0.uuid, "injection", 1])
    response = client.post(url, as_post(values("injection", on=TODAY(), operator="Dr Typed")))
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        "The MSC product was not released (Gram stain positive): it cannot be recorded as "
        "injected." in html
    )
    assert 'value="Dr Typed"' in html  # what was typed is kept
    assert not Injection.objects.exists()
    assert not Visit.objects.filter(patient=d0.patient, definition__code="M4").exists()


def test_a_product_already_injected_cannot_be_marked_not_released(d0, andrologist):
    procedure_day(d0.patient, andrologist, on=TODAY())
    prep = MscPreparation.objects.get(visit=d0)
    prep.release_decision = "NOT_RELEASED"
    prep.release_reason = "Changed my mind"
    from patients.services import crf_save

    with pytest.raises(ValidationError) as exc:
        crf_save(record=prep, user=andrologist, reason="test")
    assert "already recorded as injected" in exc.value.message_dict["release_decision"][0]


def test_more_cells_than_prepared_cannot_be_injected(d0, andrologist):
    _prepare(d0, andrologist)
    with pytest.raises(ValidationError) as exc:
        save("injection", d0, andrologist, on=TODAY(), left_cells_million=Decimal("3.00"))
    assert exc.value.messages == [
        "The cells injected add up to 5.2 x 10^6, more than the 4.4 x 10^6 prepared."
    ]


def test_the_injection_cannot_precede_the_end_of_the_preparation(d0, andrologist):
    _prepare(d0, andrologist)
    with pytest.raises(ValidationError) as exc:
        save("injection", d0, andrologist, on=TODAY(), injection_time=time(11, 0))
    assert "cannot precede the end of the MSC preparation" in str(
        exc.value.message_dict["injection_time"]
    )


def test_each_injected_side_needs_volume_and_cells_and_the_other_stays_empty(d0, andrologist):
    _prepare(d0, andrologist)
    with pytest.raises(ValidationError) as exc:
        save(
            "injection",
            d0,
            andrologist,
            on=TODAY(),
            testes_injected="LEFT",
            left_volume_ml=None,
        )
    errors = exc.value.message_dict
    assert errors["left_volume_ml"] == ["Give the volume injected into the left testis."]
    assert errors["right_volume_ml"] == ["Leave empty: the right testis was not injected."]


def test_time_from_aspiration_to_injection_is_derived(d0, andrologist):
    injection = procedure_day(d0.patient, andrologist, on=TODAY())
    aspirate = d0.labs_bonemarrowaspirate_set.get()
    delta = aspiration_to_injection(aspirate=aspirate, injection=injection)
    assert delta == timedelta(hours=4, minutes=35)
    assert format_duration(delta) == "4 h 35 min"
    assert format_duration(None) == "n/a"


def test_the_follow_up_page_shows_the_procedure_day(client, d0, andrologist):
    procedure_day(d0.patient, andrologist, on=TODAY())
    client.force_login(andrologist)
    html = client.get(reverse("followup:patient-followup", args=[d0.patient.uuid])).content
    html = html.decode()
    assert 'data-testid="aspiration-to-injection"><strong>4 h 35 min</strong>' in html
    assert ">released<" in html
