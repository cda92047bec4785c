"""End of study: completed, withdrawn with a reason, lost to follow-up, death; recorded on the
EOS visit, which is created when the user starts it."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from followup import services
from followup.models import EndOfStudy
from followup.selectors import end_of_study

from .factories import as_post, save, treated_patient

TODAY = timezone.localdate


@pytest.fixture
def treated(site, andrologist):
    return treated_patient(site, andrologist, procedure_days_ago=370)


def test_a_withdrawal_needs_its_reason(treated, andrologist):
    eos = services.end_of_study_visit_open(patient=treated, user=andrologist)
    with pytest.raises(ValidationError) as exc:
        save("end_of_study", eos, andrologist, on=TODAY(), status="WITHDRAWAL BY SUBJECT")
    assert exc.value.message_dict["withdrawal_reason"] == ["Give the reason the patient withdrew."]


def test_lost_to_follow_up_needs_the_last_contact(treated, andrologist):
    eos = services.end_of_study_visit_open(patient=treated, user=andrologist)
    with pytest.raises(ValidationError) as exc:
        save("end_of_study", eos, andrologist, on=TODAY(), status="LOST TO FOLLOW-UP")
    assert exc.value.message_dict["last_contact_date"] == [
        "Give the date the patient was last in contact."
    ]
    record = save(
        "end_of_study",
        eos,
        andrologist,
        on=TODAY(),
        status="LOST TO FOLLOW-UP",
        last_contact_date=TODAY() - timedelta(days=60),
    )
    assert end_of_study(patient=treated) == record


def test_opening_the_end_of_study_twice_makes_one_visit(treated, andrologist):
    first = services.end_of_study_visit_open(patient=treated, user=andrologist)
    assert services.end_of_study_visit_open(patient=treated, user=andrologist) == first


def test_recording_the_end_of_study_in_the_browser(client, treated, andrologist):
    client.force_login(andrologist)
    response = client.post(reverse("followup:end-of-study", args=[treated.uuid]))
    eos = treated.visits.get(definition__code="EOS")
    form_url = reverse("patients:crf-edit", args=[treated.uuid, eos.uuid, "end_of_study", 1])
    assert response["Location"] == form_url
    client.post(form_url, as_post({"assessment_date": TODAY(), "status": "COMPLETED"}))
    assert EndOfStudy.objects.get().get_status_display() == "Completed"
    html = client.get(reverse("followup:patient-followup", args=[treated.uuid])).content.decode()
    assert "End of study on" in html and "<strong>Completed</strong>" in html
    assert "Extend follow-up" not in html  # no more visits for an ended patient


def test_no_form_can_be_dated_after_the_end_of_study(site, andrologist):
    from datetime import timedelta

    import pytest
    from django.core.exceptions import ValidationError
    from django.utils import timezone

    from followup.services import end_of_study_visit_open

    from .factories import save, treated_patient, visit

    patient = treated_patient(site, andrologist, procedure_days_ago=200)
    today = timezone.localdate()
    eos = end_of_study_visit_open(patient=patient, user=andrologist)
    save("end_of_study", eos, andrologist, on=today - timedelta(days=30))
    with pytest.raises(ValidationError, match="participation ended"):
        save("followup_visit", visit(patient, "M6"), andrologist, on=today - timedelta(days=10))
    # Data from before the end is still accepted (late entry of an earlier visit).
    assert save(
        "followup_visit", visit(patient, "M4"), andrologist, on=today - timedelta(days=80)
    ).pk
