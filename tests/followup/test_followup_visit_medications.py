"""The follow-up visit's "concomitant medications since the last visit" answer and the
medication log agree: Yes needs a live medication of the log in use since the previous visit
(the procedure for the first one), so the medications reach the CM dataset, not a Y alone."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from followup import services
from followup.models import FollowUpVisit

from .factories import as_post, cm_values, save, treated_patient, values, visit

TODAY = timezone.localdate
FIELD = "concomitant_medications_taken"


@pytest.fixture
def treated(site, andrologist):
    """Procedure 200 days ago: M4 on day 120 (80 days ago), M6 on day 180 (20 days ago)."""
    return treated_patient(site, andrologist, procedure_days_ago=200)


def _days_ago(days):
    return TODAY() - timedelta(days=days)


def _medication(patient, user, *, start_days_ago, end_days_ago=None, **changes):
    end = None if end_days_ago is None else _days_ago(end_days_ago)
    return services.concomitant_medication_create(
        patient=patient,
        data=cm_values(
            start=_days_ago(start_days_ago), end_date=end, ongoing=end is None, **changes
        ),
        user=user,
    )


def _visit_form(patient, user, code, days_ago, taken):
    return save(
        "followup_visit", visit(patient, code), user, on=_days_ago(days_ago), **{FIELD: taken}
    )


def test_yes_with_an_empty_log_is_refused_with_the_way_out(treated, andrologist):
    with pytest.raises(ValidationError) as exc:
        _visit_form(treated, andrologist, "M4", 80, "Y")
    assert exc.value.message_dict[FIELD] == [
        "No medication of the patient's concomitant-medication log was in use between "
        f"{_days_ago(200):%d %b %Y} and {_days_ago(80):%d %b %Y}. Record it in the log first "
        "(link above the form), then save this visit."
    ]
    assert not FollowUpVisit.objects.exists()


def test_yes_with_a_medication_taken_since_the_procedure_is_accepted(treated, andrologist):
    # Started before the procedure, still taken.
    _medication(treated, andrologist, start_days_ago=300)
    assert _visit_form(treated, andrologist, "M4", 80, "Y").pk


def test_a_short_course_inside_the_period_counts(treated, andrologist):
    _medication(
        treated,
        andrologist,
        start_days_ago=199,
        end_days_ago=190,
        medication="Paracetamol",
        hormone_class="NONE",
    )
    assert _visit_form(treated, andrologist, "M4", 80, "Y").pk


def test_a_medication_stopped_before_the_period_or_voided_does_not_count(treated, andrologist):
    # Clomiphene stopped before the procedure (a prior medication).
    _medication(treated, andrologist, start_days_ago=400, end_days_ago=250)
    voided = _medication(treated, andrologist, start_days_ago=100)
    services.log_entry_void(
        services.MEDICATIONS, entry=voided, user=andrologist, reason="Duplicate"
    )
    with pytest.raises(ValidationError) as exc:
        _visit_form(treated, andrologist, "M4", 80, "Y")
    assert "Record it in the log first" in exc.value.message_dict[FIELD][0]


def test_the_period_starts_at_the_previous_visit(treated, andrologist):
    _medication(treated, andrologist, start_days_ago=199, end_days_ago=190)
    _visit_form(treated, andrologist, "M4", 80, "Y")
    # Finished before M4, and one started after the M6 visit date: neither is M6's.
    _medication(treated, andrologist, start_days_ago=10)
    with pytest.raises(ValidationError) as exc:
        _visit_form(treated, andrologist, "M6", 20, "Y")
    assert (
        f"between {_days_ago(80):%d %b %Y} and {_days_ago(20):%d %b %Y}"
        in (exc.value.message_dict[FIELD][0])
    )
    # Taken on the day of M4 itself: in both periods.
    _medication(treated, andrologist, start_days_ago=90, end_days_ago=80)
    assert _visit_form(treated, andrologist, "M6", 20, "Y").pk


def test_no_is_accepted_whatever_the_log_holds(treated, andrologist):
    assert _visit_form(treated, andrologist, "M4", 80, "N").pk
    _medication(treated, andrologist, start_days_ago=300)
    assert _visit_form(treated, andrologist, "M6", 20, "N").pk


def test_the_visit_page_shows_the_rule_and_links_the_log(client, treated, andrologist):
    m4 = visit(treated, "M4")
    url = reverse("patients:crf-edit", args=[treated.uuid, m4.uuid, "followup_visit", 1])
    client.force_login(andrologist)
    data = as_post(values("followup_visit", on=_days_ago(80), **{FIELD: "Y"}))
    response = client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Record it in the log first (link above the form)" in html
    assert f'href="{reverse("followup:cm-list", args=[treated.uuid])}"' in html
    assert not FollowUpVisit.objects.exists()
    _medication(treated, andrologist, start_days_ago=300)
    assert client.post(url, data).status_code == 302
    assert FollowUpVisit.objects.get().concomitant_medications_taken == "Y"


def test_the_form_has_no_free_text_list_any_more(client, treated, andrologist):
    m4 = visit(treated, "M4")
    client.force_login(andrologist)
    html = client.get(
        reverse("patients:crf-edit", args=[treated.uuid, m4.uuid, "followup_visit", 1])
    ).content.decode()
    assert 'name="concomitant_medications_taken"' in html
    assert 'name="concomitant_medications"' not in html
    assert "Record each medication in the patient's concomitant-medication log" in html
