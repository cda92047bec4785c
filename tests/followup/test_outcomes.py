"""Derived outcomes, computed in one place: responder, first sperm, hormone % change."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from followup import services
from followup.selectors import patient_outcomes, percent_change

from ..factories import save_crf
from .factories import treated_patient, visit

TODAY = timezone.localdate


def _days(n):
    return timedelta(days=n)


@pytest.fixture
def treated(site, andrologist):
    """Procedure 200 days ago (P); M4 at P+120 and M6 at P+180 are in the past."""
    patient = treated_patient(site, andrologist, procedure_days_ago=200)
    scr = visit(patient, "SCR")
    save_crf("hormones", scr, andrologist, assessment_date=TODAY() - _days(215))
    save_crf("semen_analysis", scr, andrologist, assessment_date=TODAY() - _days(215))
    return patient


def _p():
    return TODAY() - _days(200)


def test_no_follow_up_analysis_yet_is_not_a_responder(treated):
    outcomes = patient_outcomes(patient=treated)
    assert outcomes.procedure_date == _p()
    assert (outcomes.responder, outcomes.followup_analyses) == (False, 0)
    assert outcomes.first_sperm_day is None


def test_sperm_in_the_pellet_only_at_a_follow_up_makes_a_responder(treated, andrologist):
    save_crf("semen_analysis", visit(treated, "M4"), andrologist, assessment_date=_p() + _days(121))
    save_crf(
        "semen_analysis",
        visit(treated, "M6"),
        andrologist,
        assessment_date=_p() + _days(182),
        sperm_seen="PELLET",
    )
    outcomes = patient_outcomes(patient=treated)
    assert outcomes.responder is True
    assert outcomes.followup_analyses == 2
    assert (outcomes.first_sperm_date, outcomes.first_sperm_day) == (_p() + _days(182), 182)
    assert outcomes.first_sperm_visit == "M6"


def test_sperm_at_an_unscheduled_visit_counts_and_the_earliest_is_first(treated, andrologist):
    uns = services.visit_add_unscheduled(patient=treated, user=andrologist)
    save_crf(
        "semen_analysis",
        uns,
        andrologist,
        assessment_date=_p() + _days(150),
        sperm_seen="FRESH",
        concentration=Decimal("0.2"),
    )
    save_crf(
        "semen_analysis",
        visit(treated, "M6"),
        andrologist,
        assessment_date=_p() + _days(181),
        sperm_seen="FRESH",
        concentration=Decimal("1.5"),
    )
    outcomes = patient_outcomes(patient=treated)
    assert (outcomes.first_sperm_day, outcomes.first_sperm_visit) == (150, "UNS 1")


def test_sperm_at_screening_does_not_make_a_responder(site, andrologist):
    patient = treated_patient(site, andrologist, procedure_days_ago=10)
    save_crf(
        "semen_analysis",
        visit(patient, "SCR"),
        andrologist,
        sequence=2,
        assessment_date=TODAY() - _days(20),
        sperm_seen="PELLET",
    )
    assert patient_outcomes(patient=patient).responder is False


@pytest.mark.parametrize(
    "baseline, after, fall, expected",
    [
        (Decimal("20"), Decimal("15"), True, Decimal("25.0")),  # FSH fell by a quarter
        (Decimal("20"), Decimal("25"), True, Decimal("-25.0")),  # FSH rose
        (Decimal("3"), Decimal("4"), False, Decimal("33.3")),  # testosterone rose by a third
        (Decimal("4"), Decimal("3"), False, Decimal("-25.0")),
        (Decimal("0"), Decimal("3"), True, None),  # baseline 0: n/a
        (None, Decimal("3"), True, None),  # baseline missing
        (Decimal("3"), None, False, None),  # no follow-up value
    ],
)
def test_percent_change_formulas(baseline, after, fall, expected):
    assert percent_change(baseline=baseline, after=after, fall=fall) == expected


def test_hormone_change_uses_the_screening_baseline_and_the_last_follow_up(treated, andrologist):
    save_crf(
        "hormones",
        visit(treated, "M4"),
        andrologist,
        assessment_date=_p() + _days(120),
        fsh=Decimal("30"),
    )
    save_crf(
        "hormones",
        visit(treated, "M6"),
        andrologist,
        assessment_date=_p() + _days(180),
        fsh=Decimal("18"),
        lh=Decimal("9.8"),
        testosterone=Decimal("4.0"),
    )
    by_code = {h.code: h for h in patient_outcomes(patient=treated).hormones}
    # Baseline (factories): FSH 22.5, LH 9.8, testosterone 3.2.
    assert (by_code["fsh"].baseline, by_code["fsh"].after) == (Decimal("22.5"), Decimal("18"))
    assert by_code["fsh"].pct_change == Decimal("20.0")  # (22.5 - 18) / 22.5
    assert by_code["lh"].pct_change == Decimal("0.0")
    assert by_code["testosterone"].pct_change == Decimal("25.0")  # (4.0 - 3.2) / 3.2


def test_the_follow_up_page_shows_the_outcomes(client, treated, andrologist):
    save_crf(
        "semen_analysis",
        visit(treated, "M4"),
        andrologist,
        assessment_date=_p() + _days(125),
        sperm_seen="PELLET",
    )
    client.force_login(andrologist)
    html = client.get(reverse("followup:patient-followup", args=[treated.uuid])).content.decode()
    assert "Responder" in html and "day 125 after the procedure" in html
    # No follow-up hormones yet: the change is not available.
    assert '<tr data-hormone="fsh"><td>FSH (IU/L)</td><td>22.50</td><td>n/a</td>' in html


def test_the_cohort_loader_gives_each_patient_the_same_outcomes_in_bounded_queries(
    site, andrologist, django_assert_max_num_queries
):
    from followup.selectors import NO_RECORDS, outcome_records, outcomes_from
    from patients.models import Patient

    responder = treated_patient(site, andrologist, procedure_days_ago=200)
    p = TODAY() - _days(200)
    save_crf("semen_analysis", visit(responder, "M4"), andrologist, assessment_date=p + _days(121))
    save_crf(
        "semen_analysis",
        visit(responder, "M6"),
        andrologist,
        assessment_date=p + _days(181),
        sperm_seen="PELLET",
    )
    save_crf("hormones", visit(responder, "SCR"), andrologist, assessment_date=p - _days(10))
    save_crf(
        "hormones", visit(responder, "M6"), andrologist, assessment_date=p + _days(181), fsh=18
    )
    waiting = treated_patient(site, andrologist, procedure_days_ago=20)
    with django_assert_max_num_queries(3):
        records = outcome_records(patients=Patient.objects.all())
    for patient in (responder, waiting):
        bulk = outcomes_from(records=records.get(patient.pk, NO_RECORDS))
        assert bulk == patient_outcomes(patient=patient)
    assert outcomes_from(records=records[responder.pk]).last_analysis_day == 181
    assert outcomes_from(records=records[waiting.pk]).followup_analyses == 0
