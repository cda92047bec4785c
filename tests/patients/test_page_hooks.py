"""The patient pages' extension points (patients.hooks): followup, monitoring and reports add
the visit statuses, queries, SDV, signatures, the charts and the CRF page's review, without
patients importing them."""

from datetime import timedelta

from django.utils import timezone

from monitoring.services import query_open
from patients import hooks
from patients.selectors import patient_detail_queryset, patient_page_record, patient_record

from ..conftest import enrol, give_consent
from ..factories import save_crf
from ..followup.factories import procedure_day


def _patient_in_follow_up(site, andrologist):
    """Consented 400 days ago, procedure 182 days ago: M4 missed, M6 open."""
    patient = enrol(site, andrologist, days_ago=400)
    give_consent(patient, andrologist, days_ago=400)
    procedure_day(patient, andrologist, on=timezone.localdate() - timedelta(days=182))
    return patient_detail_queryset().get(pk=patient.pk)


def test_the_page_record_carries_what_the_apps_above_add(site, andrologist, monitor):
    patient = _patient_in_follow_up(site, andrologist)
    scr = patient.visits.get(definition__code="SCR")
    hormones = save_crf(
        "hormones", scr, andrologist, assessment_date=timezone.localdate() - timedelta(days=390)
    )
    query_open(record=hormones, field_name="lh", question="Units?", user=monitor)
    bare = patient_record(patient=patient)
    assert {row.status for row in bare.rows} == {""} and bare.signatures == []
    record = patient_page_record(patient=patient)
    rows = {row.definition.code: row for row in record.rows}
    assert (rows["M4"].status, rows["M4"].awaited) == ("missed", False)
    assert (rows["M6"].status, rows["M6"].awaited, rows["M6"].status_label) == (
        "open",
        True,
        "Open (in window)",
    )
    assert record.next_due.definition.code == "M6"
    cells = {cell.code: cell for cell in rows["SCR"].cells}
    assert cells["hormones"].open_queries == 1 and cells["hormones"].sdv == "pending"
    panels = hooks.panels_for(record)
    assert [p.template for p in panels] == ["reports/_patient_charts.html"]
    assert [c.title for c in panels[0].context["patient_charts"]][0] == "FSH and LH"


def test_with_nothing_registered_the_page_shows_the_record_alone(monkeypatch, site, andrologist):
    monkeypatch.setattr(hooks, "_annotators", [])
    monkeypatch.setattr(hooks, "_panels", [])
    monkeypatch.setattr(hooks, "_slot_review", [hooks.SlotReview()])
    patient = _patient_in_follow_up(site, andrologist)
    record = patient_page_record(patient=patient)
    assert {row.status for row in record.rows} == {""}
    assert all(row.awaited for row in record.rows) and record.signatures == []
    assert hooks.panels_for(record) == []
    review = hooks.slot_review()
    d0 = patient.visits.get(definition__code="D0")
    assert review.lock(visit=d0) is None and review.queries(record=None) == []
