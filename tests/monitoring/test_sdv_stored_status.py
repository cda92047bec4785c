"""The SDV status stored per form (monitoring.SdvFormStatus, issue 12): after every kind of
write (a save, a save with the same values, a changed save, a void and a new entry of the
slot, a verification, a write outside the application) the stored status of every live form
equals the status computed from its values and its slot's newest verification; the backfill
computes the same; the worklist's tabs and pages read it with a fixed number of queries."""

import importlib
from collections import Counter
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.urls import reverse

from core import crf
from monitoring import services
from monitoring.models import SdvCount, SdvFormStatus, SdvRecheck, SourceVerification
from monitoring.selectors import (
    SDV_RANK,
    SdvStatus,
    latest_verifications,
    sdv_status,
    sdv_worklist,
)
from patients import services as patient_services

from ..conftest import enrol, give_consent
from ..factories import complete_screening


def computed() -> dict[tuple[str, int], str]:
    """(form code, record id) -> the status computed from the values (the reference)."""
    latest = latest_verifications(SourceVerification.objects.all())
    out = {}
    for definition in crf.all_definitions():
        for record in definition.model.objects.filter(voided_at__isnull=True):
            slot = (record.visit_id, definition.code, record.sequence)
            out[(definition.code, record.pk)] = sdv_status(record, latest.get(slot))
    return out


def stored() -> dict[tuple[str, int], str]:
    return {(row.form_code, row.record_id): row.status for row in SdvFormStatus.objects.all()}


def assert_honest():
    """The stored status is the computed one, for every live form and no other row (after
    the worklist's re-check of what the database queued)."""
    services.sdv_recheck()
    assert not SdvRecheck.objects.exists()
    assert stored() == computed()
    for row in SdvFormStatus.objects.all():
        assert row.rank == SDV_RANK[row.status]
    # The tabs' counts (SdvCount, kept by triggers) are the stored rows counted.
    counted = Counter()
    for site_id, status, n in SdvCount.objects.values_list("site_id", "status", "n"):
        counted[(site_id, status)] += n
    rows = Counter(SdvFormStatus.objects.values_list("site_id", "status"))
    assert +counted == rows


@pytest.fixture
def cohort(site, other_site, andrologist, other_andrologist):
    """Four patients at two sites with their screening forms (about 40 forms)."""
    patients = []
    for s, user in ((site, andrologist), (site, andrologist), (other_site, other_andrologist)):
        patient = enrol(s, user, name=f"Cohort {len(patients)}")
        give_consent(patient, user)
        complete_screening(patient.visits.get(definition__code="SCR"), user)
        patients.append(patient)
    return patients


def _semen(patient, sequence=1):
    return patient.visits.get(definition__code="SCR").labs_semenanalysis_set.get(
        sequence=sequence, voided_at__isnull=True
    )


def test_every_write_keeps_the_stored_status_equal_to_the_computed_one(
    cohort, monitor, andrologist
):
    assert stored() and set(stored().values()) == {SdvStatus.PENDING}
    assert_honest()
    first, second = cohort[0], cohort[1]
    # Verified: the form and only it.
    a = _semen(first)
    services.source_verify(record=a, user=monitor)
    assert stored()[("semen_analysis", a.pk)] == SdvStatus.VERIFIED
    assert_honest()
    # A save with the values verified (only the reason given) stays verified.
    a.refresh_from_db()
    patient_services.crf_save(record=a, user=andrologist, reason="checked again, no change")
    assert stored()[("semen_analysis", a.pk)] == SdvStatus.VERIFIED
    # A change: changed since verification; back to the values verified: verified again.
    volume = a.volume_ml
    a.volume_ml = volume + Decimal("0.3")
    patient_services.crf_save(record=a, user=andrologist, reason="re-read")
    assert stored()[("semen_analysis", a.pk)] == SdvStatus.CHANGED
    assert_honest()
    a.volume_ml = volume
    patient_services.crf_save(record=a, user=andrologist, reason="first reading was right")
    assert stored()[("semen_analysis", a.pk)] == SdvStatus.VERIFIED
    assert_honest()
    # A verified form voided leaves the worklist; entered again, it is changed (its slot's
    # verification names the voided record).
    b = _semen(second, 2)
    services.source_verify(record=b, user=monitor)
    patient_services.crf_void(record=b, user=andrologist, reason="wrong patient")
    assert ("semen_analysis", b.pk) not in stored()
    assert_honest()
    from ..factories import save_crf

    again = save_crf("semen_analysis", b.visit, andrologist, sequence=2)
    assert stored()[("semen_analysis", again.pk)] == SdvStatus.CHANGED
    assert_honest()
    # Verified again: the new record is verified.
    services.source_verify(record=again, user=monitor)
    assert stored()[("semen_analysis", again.pk)] == SdvStatus.VERIFIED
    assert_honest()


@pytest.mark.postgres
def test_a_write_outside_the_application_is_queued_and_hashed_again(cohort, monitor, client):
    """Raw SQL cannot run Python: a trigger queues the form, and the worklist hashes it again
    before it counts, so the tab shows the change."""
    a = _semen(cohort[0])
    services.source_verify(record=a, user=monitor)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE labs_semenanalysis SET volume_ml = volume_ml + 1 WHERE id = %s", [a.pk]
        )
    assert list(SdvRecheck.objects.values_list("form_code", "record_id")) == [
        ("semen_analysis", a.pk)
    ]
    assert stored()[("semen_analysis", a.pk)] == SdvStatus.VERIFIED  # not yet re-checked
    client.force_login(monitor)
    html = client.get(reverse("monitoring:sdv-list"), {"status": "changed"}).content.decode()
    assert "Changed since verification: <strong>1</strong>" in html
    assert not SdvRecheck.objects.exists()
    assert_honest()
    # The values put back by SQL: verified again. A form voided by SQL leaves the list.
    b = _semen(cohort[1])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE labs_semenanalysis SET volume_ml = volume_ml - 1 WHERE id = %s", [a.pk]
        )
        cursor.execute(
            "UPDATE labs_semenanalysis SET voided_at = now(), void_reason = 'sql' WHERE id = %s",
            [b.pk],
        )
    rows = sdv_worklist(user=monitor)
    assert rows.counts()[SdvStatus.VERIFIED] == 1
    assert b.pk not in {r.record.pk for r in rows if r.record.crf_code == "semen_analysis"}
    assert_honest()


@pytest.mark.postgres
def test_an_application_write_queues_nothing(cohort, monitor, andrologist):
    a = _semen(cohort[0])
    services.source_verify(record=a, user=monitor)
    a.volume_ml += Decimal("0.1")
    patient_services.crf_save(record=a, user=andrologist, reason="re-read")
    assert not SdvRecheck.objects.exists()


def test_the_backfill_computes_every_status_in_sql(cohort, monitor, andrologist):
    """Migration 0007's backfill over existing data (the table emptied first): the statuses
    it can tell from the trail, the others queued and hashed by the first re-check."""
    a, b, c = _semen(cohort[0]), _semen(cohort[1]), _semen(cohort[2])
    for record in (a, b, c):
        services.source_verify(record=record, user=monitor)
    b.volume_ml += Decimal("0.2")
    patient_services.crf_save(record=b, user=andrologist, reason="re-read")
    c.refresh_from_db()
    patient_services.crf_save(record=c, user=andrologist, reason="same values")
    patient_services.crf_void(record=_semen(cohort[0], 3), user=andrologist, reason="typo")
    expected = computed()
    SdvFormStatus.objects.all().delete()
    migration = importlib.import_module("monitoring.migrations.0007_sdv_form_status")
    # The backfill reads only the editor's connection (SQLite refuses a schema editor inside
    # the test's transaction).
    migration.backfill(None, SimpleNamespace(connection=connection))
    # Only the form changed after its verification (b) is left to hash: a save with the same
    # values (c) writes no audit row.
    assert list(SdvRecheck.objects.values_list("record_id", flat=True)) == [b.pk]
    assert stored()[("semen_analysis", a.pk)] == SdvStatus.VERIFIED
    services.sdv_recheck()
    assert stored() == expected
    assert_honest()
    assert expected[("semen_analysis", b.pk)] == SdvStatus.CHANGED
    assert expected[("semen_analysis", c.pk)] == SdvStatus.VERIFIED


def _reference_order(user, status=""):
    """The worklist as the old selector ordered it: the user's live forms with their computed
    status, sorted by status rank, study id, visit order, form code, sequence, id."""
    visible = set(SdvFormStatus.objects.for_user(user).values_list("form_code", "record_id"))
    statuses = computed()
    out = []
    for definition in crf.all_definitions():
        records = definition.model.objects.filter(voided_at__isnull=True).select_related(
            "visit__patient", "visit__definition"
        )
        for record in records:
            st = statuses[(definition.code, record.pk)]
            if (definition.code, record.pk) not in visible or (status and st != status):
                continue
            out.append(
                (
                    SDV_RANK[st],
                    record.visit.patient.study_id,
                    record.visit.definition.order,
                    definition.code,
                    record.sequence,
                    record.pk,
                )
            )
    return sorted(out)


def test_the_worklist_counts_and_pages_follow_the_stored_status(
    cohort, monitor, andrologist, other_site
):
    from ..conftest import make_user

    for record in (_semen(cohort[0]), _semen(cohort[1], 2), _semen(cohort[2])):
        services.source_verify(record=record, user=monitor)
    changed = _semen(cohort[1], 2)
    changed.volume_ml += Decimal("1")
    patient_services.crf_save(record=changed, user=andrologist, reason="re-read")
    outsider = make_user("otto", "Monitor", other_site)
    for user in (monitor, outsider):
        for status in ("", *SdvStatus.LABELS):
            rows = sdv_worklist(user=user, status=status)
            expected = _reference_order(user, status)
            got = [
                (
                    SDV_RANK[r.status],
                    r.record.visit.patient.study_id,
                    r.record.visit.definition.order,
                    r.record.crf_code,
                    r.record.sequence,
                    r.record.pk,
                )
                for r in rows
            ]
            assert got == expected
            # Paging: slices of 7 put together are the whole list.
            pages = [x for i in range(0, len(rows), 7) for x in rows[i : i + 7]]
            assert [r.record.pk for r in pages] == [r.record.pk for r in rows]
        counts = sdv_worklist(user=user).counts()
        reference = Counter(
            status
            for (code, pk), status in computed().items()
            if SdvFormStatus.objects.for_user(user).filter(form_code=code, record_id=pk).exists()
        )
        assert counts == {key: reference.get(key, 0) for key in SdvStatus.LABELS}
    assert sdv_worklist(user=outsider).counts()[SdvStatus.VERIFIED] == 1


def test_the_worklist_reads_five_queries_whatever_the_study_size(
    site, andrologist, monitor, django_assert_num_queries
):
    """The re-check queue, the counts and one page (its visits and verifications joined)."""
    for n in (3, 30):
        while SdvFormStatus.objects.values("patient").distinct().count() < n:
            patient = enrol(site, andrologist)
            give_consent(patient, andrologist)
            complete_screening(patient.visits.get(definition__code="SCR"), andrologist)
        services.sdv_recheck()
        with django_assert_num_queries(3):
            rows = sdv_worklist(user=monitor, status=SdvStatus.PENDING)
            page = rows[0:50]
            [(r.record.visit.patient.site.code, r.record.visit.label, r.verification) for r in page]
        assert len(page) == min(50, rows.count())
