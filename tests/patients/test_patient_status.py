"""The stored stage and flags (PatientStatus): written by the services in the transaction of
each write, always equal to what the rules compute from the records (with_stage,
with_flag_count), drift after a raw SQL write found and repaired, the backfill."""

import importlib
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patients.models import Patient, PatientStatus
from patients.selectors import (
    Stage,
    computed_status,
    patient_list,
    stage_counts,
    status_drift,
)
from patients.services import consent_withdraw, crf_save, crf_void, patient_status_repair

from ..conftest import enrol, give_consent
from ..factories import save_crf
from ..followup.factories import procedure_day, save

TODAY = timezone.localdate


def stored(patient) -> tuple[str, bool]:
    row = PatientStatus.objects.get(patient=patient)
    assert row.site_id == patient.site_id
    return row.stage, row.has_flags


def computed(patient) -> tuple[str, bool]:
    _, _, stage, flags = computed_status(Patient.objects.filter(pk=patient.pk)).get()
    return stage, flags


def assert_status(patient, stage, flags=False):
    assert computed(patient) == (stage, flags)
    assert stored(patient) == (stage, flags)


def test_a_patient_walked_through_every_stage(site, andrologist):
    patient = enrol(site, andrologist)
    assert_status(patient, Stage.AWAITING_CONSENT)
    consent = give_consent(patient, andrologist, days_ago=20)
    assert_status(patient, Stage.SCREENING)
    scr = patient.visits.get(definition__code="SCR")
    refused = save_crf("eligibility", scr, andrologist, incl02="N")
    assert_status(patient, Stage.SCREEN_FAILURE)
    crf_void(record=refused, user=andrologist, reason="Wrong patient's answers")
    assert_status(patient, Stage.SCREENING)
    eligibility = save_crf("eligibility", scr, andrologist)
    assert_status(patient, Stage.ELIGIBLE)
    # A correction decides again (the same record, another answer).
    eligibility.excl01 = "Y"
    crf_save(record=eligibility, user=andrologist, reason="Misread")
    assert_status(patient, Stage.SCREEN_FAILURE)
    eligibility.excl01 = "N"
    crf_save(record=eligibility, user=andrologist, reason="Checked again")
    assert_status(patient, Stage.ELIGIBLE)
    procedure_day(patient, andrologist, on=TODAY() - timedelta(days=10))
    assert_status(patient, Stage.FOLLOW_UP)
    from followup.services import end_of_study_visit_open

    eos_visit = end_of_study_visit_open(patient=patient, user=andrologist)
    ended = save("end_of_study", eos_visit, andrologist, on=TODAY())
    assert_status(patient, Stage.ENDED)
    crf_void(record=ended, user=andrologist, reason="Entered on the wrong patient")
    assert_status(patient, Stage.FOLLOW_UP)
    consent_withdraw(consent=consent, withdrawn_on=TODAY(), reason="Moved abroad", user=andrologist)
    assert_status(patient, Stage.WITHDRAWN)
    assert status_drift() == []


def test_flags_follow_the_soft_limits_and_the_voids(site, andrologist):
    patient = enrol(site, andrologist)
    give_consent(patient, andrologist)
    scr = patient.visits.get(definition__code="SCR")
    normal = save_crf("semen_analysis", scr, andrologist, abstinence_days=3)
    assert_status(patient, Stage.SCREENING, flags=False)
    unusual = save_crf("semen_analysis", scr, andrologist, sequence=2, abstinence_days=12)
    assert_status(patient, Stage.SCREENING, flags=True)
    unusual.abstinence_days = 4
    crf_save(record=unusual, user=andrologist, reason="Typo")
    assert_status(patient, Stage.SCREENING, flags=False)
    normal.abstinence_days = 11
    crf_save(record=normal, user=andrologist, reason="Asked again")
    assert_status(patient, Stage.SCREENING, flags=True)
    crf_void(record=normal, user=andrologist, reason="Duplicate")
    assert_status(patient, Stage.SCREENING, flags=False)


def test_a_form_that_decides_nothing_costs_no_statement_and_one_that_does_two_or_three(
    site, andrologist
):
    patient = enrol(site, andrologist)
    give_consent(patient, andrologist)
    scr = patient.visits.get(definition__code="SCR")
    table = PatientStatus._meta.db_table

    def status_statements(write) -> list[str]:
        """The statements of the refresh: on PatientStatus, and the computation (with_stage's
        CASE names the stages)."""
        with CaptureQueriesContext(connection) as queries:
            write()
        return [
            q["sql"].split()[0] + (" compute" if "THEN 'awaiting_consent'" in q["sql"] else "")
            for q in queries
            if table in q["sql"] or "THEN 'awaiting_consent'" in q["sql"]
        ]

    # The karyotype has no soft limits and does not decide the stage.
    assert status_statements(lambda: save_crf("karyotype", scr, andrologist)) == []
    # The stage changes: lock, compute, store.
    assert status_statements(lambda: save_crf("eligibility", scr, andrologist)) == [
        "SELECT",
        "SELECT compute",
        "UPDATE",
    ]
    # A value within the limits: lock and compute, nothing to store.
    assert status_statements(
        lambda: save_crf("semen_analysis", scr, andrologist, abstinence_days=3)
    ) == ["SELECT", "SELECT compute"]
    assert_status(patient, Stage.ELIGIBLE)


def test_a_raw_sql_write_is_found_as_drift_and_repaired(site, andrologist, patient):
    give_consent(patient, andrologist)
    other = enrol(site, andrologist)
    scr = patient.visits.get(definition__code="SCR")
    record = save_crf("semen_analysis", scr, andrologist, abstinence_days=3)
    assert status_drift() == []
    call_command("patient_status")  # no drift: no error
    # A write past the services (as an import or a database console would).
    table = connection.ops.quote_name(type(record)._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET abstinence_days = 15 WHERE id = %s", [record.pk])
    PatientStatus.objects.filter(patient=other).delete()
    assert status_drift() == [
        (patient.pk, site.pk, (Stage.SCREENING, False), (Stage.SCREENING, True)),
        (other.pk, site.pk, None, (Stage.AWAITING_CONSENT, False)),
    ]
    with pytest.raises(CommandError, match="2 patient"):
        call_command("patient_status")
    from patients.integrity import status_check

    check = status_check()
    assert not check.passed and len(check.problems) == 2
    assert "stored Screening, the records say Screening, flagged" in check.problems[0]
    assert len(patient_status_repair()) == 2
    assert status_drift() == [] and status_check().passed
    assert_status(patient, Stage.SCREENING, flags=True)
    assert_status(other, Stage.AWAITING_CONSENT)


def test_the_backfill_migration_computes_every_existing_patient(site, other_site, andrologist):
    backfill = importlib.import_module("patients.migrations.0004_patient_status").backfill
    awaiting = enrol(site, andrologist)
    screening = enrol(site, andrologist)
    give_consent(screening, andrologist)
    save_crf(
        "semen_analysis",
        screening.visits.get(definition__code="SCR"),
        andrologist,
        abstinence_days=12,
    )
    eligible = enrol(other_site, andrologist)
    give_consent(eligible, andrologist)
    save_crf("eligibility", eligible.visits.get(definition__code="SCR"), andrologist)
    # As before the migration: no stored row, or a wrong one left over.
    PatientStatus.objects.filter(patient=awaiting).delete()
    PatientStatus.objects.filter(patient=screening).update(stage=Stage.ENDED, has_flags=False)
    PatientStatus.objects.filter(patient=eligible).delete()
    with CaptureQueriesContext(connection) as queries:
        backfill(None, None)
    assert len(queries) <= 4  # set-based: DELETE and INSERT ... SELECT (and the atomic)
    assert_status(awaiting, Stage.AWAITING_CONSENT)
    assert_status(screening, Stage.SCREENING, flags=True)
    assert_status(eligible, Stage.ELIGIBLE)
    assert status_drift() == []
    call_command("patient_status", "--rebuild")
    assert PatientStatus.objects.count() == Patient.objects.count() == 3


def test_the_list_and_the_counts_read_the_stored_status(site, other_site, andrologist, monitor):
    awaiting = enrol(site, andrologist)
    flagged = enrol(site, andrologist)
    give_consent(flagged, andrologist)
    save_crf(
        "semen_analysis", flagged.visits.get(definition__code="SCR"), andrologist, abstinence_days=9
    )
    elsewhere = enrol(other_site, andrologist)
    # What the list shows is the stored row (a drifted row shows until repaired).
    PatientStatus.objects.filter(patient=awaiting).update(stage=Stage.ELIGIBLE)
    assert [p.study_id for p in patient_list(user=andrologist, stage=Stage.ELIGIBLE)] == [
        awaiting.study_id
    ]
    assert [p.study_id for p in patient_list(user=andrologist, flagged=True)] == [flagged.study_id]
    counts = stage_counts(user=andrologist)
    assert (counts.total, counts.flagged) == (2, 1)
    assert counts.by_stage[Stage.ELIGIBLE] == 1 and counts.by_stage[Stage.SCREENING] == 1
    everywhere = stage_counts(user=monitor)
    assert everywhere.total == 3 and everywhere.by_stage[Stage.AWAITING_CONSENT] == 1
    assert elsewhere.study_id in {p.study_id for p in patient_list(user=monitor)}


@pytest.mark.postgres
def test_bench_scale_clones_the_stored_status_right(site, andrologist, patient):
    """bench/scale.py finds PatientStatus by its foreign key to Patient and copies it with the
    patient: a clone's records are its original's, so its stored status is right as copied."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import scale

    give_consent(patient, andrologist)
    save_crf(
        "semen_analysis",
        patient.visits.get(definition__code="SCR"),
        andrologist,
        abstinence_days=12,
    )
    assert PatientStatus in scale.patient_scoped_models()
    scale.clone(3, batch=2)
    assert PatientStatus.objects.count() == Patient.objects.count() == 3
    assert set(PatientStatus.objects.values_list("stage", "has_flags")) == {(Stage.SCREENING, True)}
    assert status_drift() == []
