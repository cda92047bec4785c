"""The follow-up schedule: created from the procedure date when the injection is saved,
idempotently; window edges and the statuses that follow from them; unscheduled visits and
extensions."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from followup import services
from followup.models import VisitExtension
from followup.selectors import VisitStatus, patient_schedule, status_once_closed, visit_status
from patients.models import Eligibility, Visit
from patients.services import consent_withdraw, crf_save

from ..conftest import enrol, give_consent
from ..factories import complete_screening, save_crf
from .factories import procedure_day, save, treated_patient, visit

TODAY = timezone.localdate


def _days(n):
    return timedelta(days=n)


@pytest.fixture
def patient_p(site, andrologist):
    """Consented a year ago; follow-up schedule anchored on P = 200 days ago."""
    patient = enrol(site, andrologist, days_ago=400)
    give_consent(patient, andrologist, days_ago=400)
    return patient


def test_recording_the_injection_creates_the_scheduled_visits_with_their_windows(
    consented_patient, andrologist
):
    p = TODAY()
    assert not consented_patient.visits.filter(definition__code="M4").exists()
    procedure_day(consented_patient, andrologist, on=p)
    visits = {v.code: v for v in consented_patient.visits.select_related("definition")}
    assert set(visits) == {"SCR", "D0", "M4", "M6", "M8", "M10", "M12"}
    assert (visits["D0"].target_date, visits["D0"].window_end) == (p, p)
    m4 = visits["M4"]
    assert (m4.window_start, m4.target_date, m4.window_end) == (
        p + _days(106),
        p + _days(120),
        p + _days(134),
    )
    assert visits["M12"].target_date == p + _days(360)
    assert "UNS" not in visits and "EOS" not in visits


def test_schedule_generation_is_idempotent(patient_p, andrologist):
    p = TODAY() - _days(200)
    procedure_day(patient_p, andrologist, on=p)
    count = patient_p.visits.count()
    audit_rows = AuditEntry.objects.count()
    assert services.schedule_create(patient=patient_p, procedure_date=p, user=andrologist) == []
    assert services.schedule_create(patient=patient_p, procedure_date=p, user=andrologist) == []
    assert patient_p.visits.count() == count == 7
    assert AuditEntry.objects.count() == audit_rows  # nothing written twice


def test_a_corrected_procedure_date_moves_the_snapshotted_windows(patient_p, andrologist):
    p = TODAY() - _days(200)
    procedure_day(patient_p, andrologist, on=p)
    d0 = visit(patient_p, "D0")
    for records in (
        d0.labs_bonemarrowaspirate_set,
        d0.labs_mscpreparation_set,
        d0.labs_injection_set,
    ):
        record = records.get()
        record.assessment_date = p - _days(1)
        crf_save(record=record, user=andrologist, reason="Typo in the date")
    m4 = visit(patient_p, "M4")
    assert m4.target_date == p - _days(1) + _days(120)
    assert (m4.window_start, m4.window_end) == (p + _days(105), p + _days(133))
    assert patient_p.visits.count() == 7
    assert AuditEntry.objects.filter(
        object_id=m4.pk, field_name="target_date", reason__startswith="Procedure date corrected"
    ).exists()


@pytest.mark.parametrize(
    "day, expected",
    [
        (105, VisitStatus.UPCOMING),  # the day before the window opens
        (106, VisitStatus.OPEN),  # first day of the window
        (120, VisitStatus.OPEN),  # target day
        (134, VisitStatus.OPEN),  # last day of the window
        (135, VisitStatus.OVERDUE),  # the day after
        (165, VisitStatus.OVERDUE),  # the day before M6's window opens
        (166, VisitStatus.MISSED),  # M6's window opens: M4 is missed
    ],
)
def test_window_edges_give_the_visit_status(patient_p, andrologist, day, expected):
    p = TODAY() - _days(200)
    services.schedule_create(patient=patient_p, procedure_date=p, user=andrologist)
    m4 = visit(patient_p, "M4")
    assert visit_status(visit=m4, today=p + _days(day)) == expected


def test_the_last_scheduled_visit_is_overdue_for_30_days_then_missed(patient_p, andrologist):
    p = TODAY() - _days(200)
    services.schedule_create(patient=patient_p, procedure_date=p, user=andrologist)
    m12 = visit(patient_p, "M12")
    assert visit_status(visit=m12, today=m12.window_end + _days(30)) == VisitStatus.OVERDUE
    assert visit_status(visit=m12, today=m12.window_end + _days(31)) == VisitStatus.MISSED


def test_a_visit_is_done_when_all_its_forms_are_entered_even_late(patient_p, andrologist):
    p = TODAY() - _days(200)
    procedure_day(patient_p, andrologist, on=p)
    m4 = visit(patient_p, "M4")
    entered_on = p + _days(140)  # after the window: entered late
    save("followup_visit", m4, andrologist, on=entered_on)
    save_crf("semen_analysis", m4, andrologist, assessment_date=entered_on)
    # Hormones still missing: the visit is not done, and its date rules apply.
    assert visit_status(visit=m4, today=p + _days(150)) == VisitStatus.OVERDUE
    assert visit_status(visit=m4, today=TODAY()) == VisitStatus.MISSED
    save_crf("hormones", m4, andrologist, assessment_date=entered_on)
    assert visit_status(visit=m4, today=TODAY()) == VisitStatus.DONE


def test_overdue_status_shows_on_the_patients_follow_up_page(client, patient_p, andrologist):
    procedure_day(patient_p, andrologist, on=TODAY() - _days(140))  # M4 closed 6 days ago
    statuses = {r.visit.label: r.status for r in patient_schedule(patient=patient_p, today=TODAY())}
    assert statuses["M4"] == VisitStatus.OVERDUE and statuses["M6"] == VisitStatus.UPCOMING
    client.force_login(andrologist)
    html = client.get(reverse("followup:patient-followup", args=[patient_p.uuid])).content.decode()
    assert '<tr data-visit="M4" data-status="overdue">' in html


def test_unscheduled_visits_are_numbered_and_open(patient_p, andrologist):
    procedure_day(patient_p, andrologist, on=TODAY() - _days(30))
    first = services.visit_add_unscheduled(patient=patient_p, user=andrologist)
    second = services.visit_add_unscheduled(
        patient=patient_p, user=andrologist, planned_date=TODAY() + _days(3)
    )
    assert (first.label, second.label) == ("UNS 1", "UNS 2")
    assert visit_status(visit=first, today=TODAY()) == VisitStatus.OPEN
    assert visit_status(visit=second, today=TODAY()) == VisitStatus.UPCOMING
    assert visit_status(visit=second, today=TODAY() + _days(3)) == VisitStatus.OPEN


def test_follow_up_visits_cannot_be_added_before_the_injection(consented_patient, andrologist):
    with pytest.raises(ValidationError) as exc:
        services.visit_add_unscheduled(patient=consented_patient, user=andrologist)
    assert exc.value.messages == [
        "Follow-up visits start once the injection is recorded on the procedure day."
    ]
    with pytest.raises(ValidationError):
        services.schedule_extend(patient=consented_patient, user=andrologist)


def test_the_schedule_extends_in_two_month_steps(site, patient_p, andrologist):
    p = TODAY() - _days(200)
    procedure_day(patient_p, andrologist, on=p)
    m14 = services.schedule_extend(patient=patient_p, user=andrologist)
    m16 = services.schedule_extend(patient=patient_p, user=andrologist)
    assert (m14.label, m16.label) == ("M14", "M16")
    assert (m14.window_start, m14.target_date, m14.window_end) == (
        p + _days(406),
        p + _days(420),
        p + _days(434),
    )
    assert m14.definition.expected_forms == visit(patient_p, "M12").definition.expected_forms
    assert VisitExtension.objects.count() == 2
    # Another patient's schedule does not take the extensions; their own extension reuses them.
    other = treated_patient(site, andrologist, procedure_days_ago=10)
    assert not other.visits.filter(definition__code="M14").exists()
    assert services.schedule_extend(patient=other, user=andrologist).definition == m14.definition
    assert VisitExtension.objects.count() == 2


def test_an_ended_patient_gets_no_new_visit(patient_p, andrologist):
    procedure_day(patient_p, andrologist, on=TODAY() - _days(200))
    eos = services.end_of_study_visit_open(patient=patient_p, user=andrologist)
    save(
        "end_of_study",
        eos,
        andrologist,
        on=TODAY(),
        status="LOST TO FOLLOW-UP",
        last_contact_date=TODAY() - _days(20),
    )
    with pytest.raises(ValidationError) as exc:
        services.schedule_extend(patient=patient_p, user=andrologist)
    assert "ended on" in exc.value.messages[0] and "lost to follow-up" in exc.value.messages[0]


def test_adding_an_unscheduled_visit_from_the_page(client, patient_p, andrologist, monitor):
    procedure_day(patient_p, andrologist, on=TODAY() - _days(30))
    url = reverse("followup:visit-add-unscheduled", args=[patient_p.uuid])
    client.force_login(monitor)
    assert client.post(url, {}).status_code == 403
    client.force_login(andrologist)
    assert client.get(url).status_code == 405
    bad = client.post(url, {"planned_date": (TODAY() - _days(60)).isoformat()})
    assert bad.status_code == 200
    assert "A follow-up visit cannot precede the procedure" in bad.content.decode()
    response = client.post(url, {"planned_date": TODAY().isoformat()}, follow=True)
    assert "Unscheduled visit UNS 1 added." in response.content.decode()
    assert Visit.objects.filter(patient=patient_p, definition__code="UNS").count() == 1


def test_extending_from_the_page(client, patient_p, andrologist):
    procedure_day(patient_p, andrologist, on=TODAY() - _days(200))
    client.force_login(andrologist)
    response = client.post(reverse("followup:schedule-extend", args=[patient_p.uuid]), follow=True)
    html = response.content.decode()
    assert "Follow-up extended: M14 (Month 14 (extended follow-up))" in html
    assert '<tr data-visit="M14" data-status="upcoming">' in html


def test_another_sites_patient_cannot_be_changed(client, other_patient, andrologist):
    client.force_login(andrologist)
    for name in ("visit-add-unscheduled", "schedule-extend", "end-of-study"):
        assert (
            client.post(reverse(f"followup:{name}", args=[other_patient.uuid])).status_code == 404
        )
    assert (
        client.get(reverse("followup:patient-followup", args=[other_patient.uuid])).status_code
        == 404
    )


@pytest.mark.parametrize(
    "status, closed",
    [
        (VisitStatus.DONE, VisitStatus.DONE),
        (VisitStatus.MISSED, VisitStatus.MISSED),
        (VisitStatus.OVERDUE, VisitStatus.MISSED),
        (VisitStatus.OPEN, VisitStatus.NOT_EXPECTED),
        (VisitStatus.UPCOMING, VisitStatus.NOT_EXPECTED),
    ],
)
def test_once_a_patient_is_closed_no_visit_is_due(status, closed):
    assert status_once_closed(status) == closed


def test_a_withdrawn_patient_has_nothing_due_and_the_overdue_visit_counts_as_missed(
    client, patient_p, andrologist
):
    procedure_day(patient_p, andrologist, on=TODAY() - _days(140))  # M4 overdue, M6 to come
    consent_withdraw(
        consent=patient_p.consents.get(), withdrawn_on=TODAY(), reason="Moved", user=andrologist
    )
    statuses = {r.visit.label: r.status for r in patient_schedule(patient=patient_p, today=TODAY())}
    assert statuses["M4"] == VisitStatus.MISSED
    assert statuses["M6"] == statuses["M12"] == VisitStatus.NOT_EXPECTED
    assert statuses["D0"] == VisitStatus.DONE
    client.force_login(andrologist)
    html = client.get(reverse("patients:patient-detail", args=[patient_p.uuid])).content.decode()
    assert "Nothing due: withdrawn" in html and "Next due:" not in html


def test_a_screen_failure_is_not_expected_on_the_procedure_day(
    client, andrologist, consented_patient, screening_visit
):
    complete_screening(screening_visit, andrologist)
    record = Eligibility.objects.get(visit=screening_visit)
    record.excl02 = "Y"  # major systemic illness
    crf_save(record=record, user=andrologist, reason="Diabetes found at work-up")
    client.force_login(andrologist)
    html = client.get(
        reverse("patients:patient-detail", args=[consented_patient.uuid])
    ).content.decode()
    assert "Screen failure" in html and "Nothing due: screen failure" in html
    d0_row = html[html.index('data-visit="D0"') :][:2000]
    assert "Not expected" in d0_row and "Upcoming" not in d0_row


def test_next_due_skips_a_missed_visit_for_the_open_one(client, patient_p, andrologist):
    procedure_day(patient_p, andrologist, on=TODAY() - _days(182))  # M4 missed, M6 open
    statuses = {r.visit.label: r.status for r in patient_schedule(patient=patient_p, today=TODAY())}
    assert (statuses["M4"], statuses["M6"]) == (VisitStatus.MISSED, VisitStatus.OPEN)
    client.force_login(andrologist)
    html = client.get(reverse("patients:patient-detail", args=[patient_p.uuid])).content.decode()
    due = html[html.index('data-testid="next-due"') :][:300]
    assert "<strong>M6</strong>" in due and "M4" not in due
