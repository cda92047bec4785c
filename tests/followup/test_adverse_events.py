"""The adverse-event log: CTCAE grade, ICH E2A seriousness, relatedness, CDISC outcome;
numbered per patient, audited, changed with a reason, voided but never deleted."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from followup import services
from followup.models import AdverseEvent
from patients.services import consent_withdraw

from .factories import ae_values, as_post

TODAY = timezone.localdate


def _create(patient, user, **changes):
    return services.adverse_event_create(
        patient=patient, data=ae_values(onset=TODAY() - timedelta(days=2), **changes), user=user
    )


def test_events_are_numbered_per_patient_and_audited(
    consented_patient, other_patient, andrologist, other_andrologist
):
    first = _create(consented_patient, andrologist)
    second = _create(consented_patient, andrologist, term="Hematoma")
    elsewhere = _create(other_patient, other_andrologist)
    assert (first.number, second.number, elsewhere.number) == (1, 2, 1)
    assert AuditEntry.objects.filter(
        object_id=first.pk, form_code="adverse_event", field_name="term", new_value="Scrotal pain"
    ).exists()


def test_any_seriousness_criterion_makes_the_event_serious(consented_patient, andrologist):
    with pytest.raises(ValidationError) as exc:
        _create(consented_patient, andrologist, serious="N", serious_hospitalisation=True)
    assert exc.value.message_dict["serious"] == [
        "An event that meets a seriousness criterion (requires or prolongs inpatient "
        "hospitalisation) is serious: answer Yes."
    ]
    with pytest.raises(ValidationError) as exc:
        _create(consented_patient, andrologist, serious="Y")
    assert exc.value.message_dict["serious"] == [
        "Tick the criterion (ICH E2A) that makes the event serious."
    ]
    event = _create(
        consented_patient, andrologist, serious="Y", serious_hospitalisation=True, ctcae_grade=3
    )
    assert event.is_serious
    assert event.seriousness_criteria == ["requires or prolongs inpatient hospitalisation"]


def test_grade_5_means_a_fatal_outcome_with_the_death_criterion(consented_patient, andrologist):
    with pytest.raises(ValidationError) as exc:
        _create(consented_patient, andrologist, ctcae_grade=5)
    assert "Grade 5 means death related to the event" in exc.value.message_dict["ctcae_grade"][0]
    event = _create(
        consented_patient,
        andrologist,
        ctcae_grade=5,
        serious="Y",
        serious_death=True,
        ongoing=False,
        end_date=TODAY() - timedelta(days=1),
        outcome="FATAL",
    )
    assert event.get_outcome_display() == "Fatal"


def test_end_date_ongoing_and_outcome_agree(consented_patient, andrologist):
    with pytest.raises(ValidationError) as exc:
        _create(consented_patient, andrologist, ongoing=False)
    assert exc.value.message_dict["end_date"] == ["Give the end date, or tick ongoing."]
    with pytest.raises(ValidationError) as exc:
        _create(consented_patient, andrologist, outcome="RECOVERED/RESOLVED")
    assert exc.value.message_dict["outcome"] == [
        "This outcome means the event has ended: give its end date."
    ]
    with pytest.raises(ValidationError) as exc:
        _create(
            consented_patient,
            andrologist,
            ongoing=False,
            end_date=TODAY() - timedelta(days=3),
            outcome="RECOVERED/RESOLVED",
        )
    assert exc.value.message_dict["end_date"] == ["The end date cannot precede the onset."]


def test_an_event_cannot_start_before_consent(consented_patient, andrologist):
    with pytest.raises(ValidationError) as exc:
        services.adverse_event_create(
            patient=consented_patient,
            data=ae_values(onset=TODAY() - timedelta(days=31)),
            user=andrologist,
        )
    assert "precedes the consent" in exc.value.message_dict["onset_date"][0]


def test_no_event_is_recorded_after_withdrawal(consented_patient, andrologist):
    consent_withdraw(
        consent=consented_patient.consents.get(),
        withdrawn_on=TODAY(),
        reason="No longer wishes to take part",
        user=andrologist,
    )
    with pytest.raises(ValidationError) as exc:
        _create(consented_patient, andrologist)
    assert "Consent was withdrawn" in exc.value.messages[0]


def test_a_change_needs_a_reason_and_writes_old_and_new(consented_patient, andrologist):
    event = _create(consented_patient, andrologist)
    with pytest.raises(ValidationError) as exc:
        services.log_entry_update(
            services.ADVERSE_EVENTS,
            entry=event,
            data={"ctcae_grade": 2},
            user=andrologist,
            reason=" ",
        )
    assert "reason_for_change" in exc.value.message_dict
    services.log_entry_update(
        services.ADVERSE_EVENTS,
        entry=event,
        data={"ctcae_grade": 2},
        user=andrologist,
        reason="Needed analgesics",
    )
    row = AuditEntry.objects.get(object_id=event.pk, field_name="ctcae_grade", action="update")
    assert (row.old_value, row.new_value, row.reason) == ("1", "2", "Needed analgesics")


def test_a_voided_event_stays_in_the_log(client, consented_patient, andrologist):
    event = _create(consented_patient, andrologist)
    services.log_entry_void(
        services.ADVERSE_EVENTS, entry=event, user=andrologist, reason="Wrong patient"
    )
    assert AdverseEvent.objects.filter(pk=event.pk, voided_at__isnull=False).exists()
    assert AuditEntry.objects.filter(object_id=event.pk, action="void").exists()
    with pytest.raises(ValidationError):
        services.log_entry_update(
            services.ADVERSE_EVENTS,
            entry=event,
            data={"ctcae_grade": 2},
            user=andrologist,
            reason="x",
        )
    client.force_login(andrologist)
    html = client.get(reverse("followup:ae-list", args=[consented_patient.uuid])).content.decode()
    assert "voided: Wrong patient" in html


def test_recording_an_event_in_the_browser_keeps_typed_values_on_error(
    client, consented_patient, andrologist
):
    client.force_login(andrologist)
    url = reverse("followup:ae-create", args=[consented_patient.uuid])
    assert "Scrotal pain" in client.get(url).content.decode()  # a suggested CTCAE term
    data = as_post(ae_values(onset=TODAY(), term="Testicular pain", serious_other=True))
    response = client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "is serious: answer Yes." in html
    assert 'value="Testicular pain"' in html
    assert not AdverseEvent.objects.exists()
    data["serious"] = "Y"
    response = client.post(url, data, follow=True)
    assert "Adverse event 1 (Testicular pain) recorded." in response.content.decode()
    event = AdverseEvent.objects.get()
    edit = reverse("followup:ae-edit", args=[consented_patient.uuid, event.uuid])
    response = client.post(edit, {**data, "ctcae_grade": "2"})
    assert "This field is required." in response.content.decode()  # the reason
    response = client.post(edit, {**data, "ctcae_grade": "2", "reason_for_change": "Reassessed"})
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.ctcae_grade == 2


def test_monitors_read_but_do_not_record_events(client, consented_patient, andrologist, monitor):
    event = _create(consented_patient, andrologist)
    client.force_login(monitor)
    assert client.get(reverse("followup:ae-list", args=[consented_patient.uuid])).status_code == 200
    edit = reverse("followup:ae-edit", args=[consented_patient.uuid, event.uuid])
    page = client.get(edit)
    assert page.status_code == 200 and "<fieldset disabled>" in page.content.decode()
    assert client.post(edit, {"term": "x"}).status_code == 403
    assert (
        client.get(reverse("followup:ae-create", args=[consented_patient.uuid])).status_code == 403
    )


def test_another_sites_events_are_not_found(client, other_patient, other_andrologist, andrologist):
    event = _create(other_patient, other_andrologist)
    client.force_login(andrologist)
    for url in (
        reverse("followup:ae-list", args=[other_patient.uuid]),
        reverse("followup:ae-create", args=[other_patient.uuid]),
        reverse("followup:ae-edit", args=[other_patient.uuid, event.uuid]),
        reverse("followup:ae-void", args=[other_patient.uuid, event.uuid]),
    ):
        assert client.get(url).status_code == 404, url
