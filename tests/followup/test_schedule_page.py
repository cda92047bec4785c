"""The coordinators' schedule across their sites: due this week, open, overdue, missed;
filterable; bounded queries; other sites' patients never shown."""

import pytest
from django.urls import reverse
from django.utils import timezone

from followup import services
from followup.selectors import VisitStatus, visits_due_counts, visits_due_list

from .factories import save, treated_patient

TODAY = timezone.localdate


@pytest.fixture
def clinic(site, other_site, andrologist, other_andrologist):
    """One patient per situation (days since the procedure)."""
    return {
        "week": treated_patient(site, andrologist, procedure_days_ago=117),  # M4 in 3 days
        "open": treated_patient(site, andrologist, procedure_days_ago=110),  # M4 open, in 10 d
        "overdue": treated_patient(site, andrologist, procedure_days_ago=140),
        "missed": treated_patient(site, andrologist, procedure_days_ago=170),
        "elsewhere": treated_patient(other_site, other_andrologist, procedure_days_ago=140),
    }


def _rows(schedule):
    return {(r.patient.study_id, r.visit.label): r.status for r in schedule.rows}


def test_the_schedule_lists_what_needs_action_at_the_users_sites(clinic, coordinator):
    schedule = visits_due_list(user=coordinator, today=TODAY())
    ids = {key: p.study_id for key, p in clinic.items()}
    assert _rows(schedule) == {
        (ids["week"], "M4"): VisitStatus.OPEN,
        (ids["open"], "M4"): VisitStatus.OPEN,
        (ids["overdue"], "M4"): VisitStatus.OVERDUE,
        (ids["missed"], "M4"): VisitStatus.MISSED,
        (ids["missed"], "M6"): VisitStatus.OPEN,
    }
    assert schedule.counts == {"week": 1, "open": 3, "overdue": 1, "missed": 1}
    week = visits_due_list(user=coordinator, today=TODAY(), show="week")
    assert _rows(week) == {(ids["week"], "M4"): VisitStatus.OPEN}
    overdue = visits_due_list(user=coordinator, today=TODAY(), show="overdue")
    assert _rows(overdue) == {(ids["overdue"], "M4"): VisitStatus.OVERDUE}


def test_the_site_filter_and_the_monitors_view(clinic, monitor):
    ids = {key: p.study_id for key, p in clinic.items()}
    everything = visits_due_list(user=monitor, today=TODAY(), show="overdue")
    assert {r.patient.study_id for r in everything.rows} == {ids["overdue"], ids["elsewhere"]}
    other = visits_due_list(user=monitor, today=TODAY(), site_code="AND", show="overdue")
    assert {r.patient.study_id for r in other.rows} == {ids["elsewhere"]}


def test_ended_patients_leave_the_schedule(clinic, coordinator, andrologist):
    patient = clinic["overdue"]
    eos = services.end_of_study_visit_open(patient=patient, user=andrologist)
    save(
        "end_of_study",
        eos,
        andrologist,
        on=TODAY(),
        status="WITHDRAWAL BY SUBJECT",
        withdrawal_reason="Travel",
    )
    counts = visits_due_counts(user=coordinator, today=TODAY())
    assert counts["overdue"] == 0


def test_the_schedule_page(client, clinic, coordinator):
    client.force_login(coordinator)
    url = reverse("followup:schedule")
    html = client.get(url).content.decode()
    assert 'data-testid="count-overdue">1<' in html
    assert (
        f'data-patient="{clinic["missed"].study_id}" data-visit="M4" data-status="missed"' in html
    )
    assert clinic["elsewhere"].study_id not in html
    html = client.get(url, {"show": "missed"}).content.decode()
    assert clinic["overdue"].study_id not in html and clinic["missed"].study_id in html


def test_the_schedule_page_uses_a_bounded_number_of_queries(
    client, site, andrologist, coordinator, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    treated_patient(site, andrologist, procedure_days_ago=140)
    client.force_login(coordinator)
    url = reverse("followup:schedule")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for days in (110, 117, 150, 170, 200):
        treated_patient(site, andrologist, procedure_days_ago=days)
    # 14 with the session's verified device (two-factor sign-in), one per request; the
    # schedule itself is counted and paginated in the database (test_schedule_pagination).
    with django_assert_max_num_queries(14), CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert len(many) == len(few)
    assert response.content.decode().count("<tr data-patient=") >= 5


def test_lab_technicians_do_not_see_the_schedule(client, lab_technician):
    client.force_login(lab_technician)
    assert client.get(reverse("followup:schedule")).status_code == 403
    assert client.get(reverse("followup:reminder-list")).status_code == 403
