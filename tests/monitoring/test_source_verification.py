"""Source data verification: a monitor marks a form as checked against the source; a later
change to its values shows it as changed since verification, on the form, the matrix and the
monitor's worklist. Append-only and audited, site-scoped, monitors only."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.urls import reverse

from audit.models import AuditEntry
from monitoring import services
from monitoring.models import SourceVerification
from monitoring.selectors import SdvStatus, record_sdv, sdv_worklist
from patients import services as patient_services
from patients.models import Examination

from ..conftest import make_user
from ..factories import complete_screening


@pytest.fixture
def exam(consented_patient, screening_visit, andrologist):
    complete_screening(screening_visit, andrologist)
    return Examination.objects.get(visit=screening_visit)


def _verify_url(patient, visit, code="examination", sequence=1):
    return reverse("monitoring:source-verify", args=[patient.uuid, visit.uuid, code, sequence])


def _crf_url(patient, visit, code="examination", sequence=1):
    return reverse("patients:crf-edit", args=[patient.uuid, visit.uuid, code, sequence])


def test_a_monitor_verifies_a_form_from_its_page(
    client, monitor, exam, consented_patient, screening_visit
):
    client.force_login(monitor)
    page = client.get(_crf_url(consented_patient, screening_visit)).content.decode()
    assert "Not verified yet" in page and "Mark as source-verified" in page
    response = client.post(
        _verify_url(consented_patient, screening_visit), {"note": "clinic chart p.3"}, follow=True
    )
    html = response.content.decode()
    assert "Clinical examination marked as source-verified." in html
    assert "Source-verified" in html and "(clinic chart p.3)" in html
    assert "Mark as source-verified" not in html  # nothing left to do
    verification = SourceVerification.objects.get()
    assert (verification.record_id, verification.verified_by) == (exam.pk, monitor)
    assert AuditEntry.objects.filter(
        content_type__model="sourceverification", object_id=verification.pk, user=monitor
    ).exists()


def test_a_change_after_verification_shows_the_form_as_changed(
    client, monitor, andrologist, exam, consented_patient, screening_visit
):
    services.source_verify(record=exam, user=monitor)
    assert record_sdv(record=exam).status == SdvStatus.VERIFIED
    exam.weight_kg = Decimal("81")
    patient_services.crf_save(record=exam, user=andrologist, reason="re-weighed")
    exam.refresh_from_db()
    assert record_sdv(record=exam).status == SdvStatus.CHANGED
    client.force_login(andrologist)
    matrix = client.get(
        reverse("patients:patient-detail", args=[consented_patient.uuid])
    ).content.decode()
    cell = matrix[matrix.index('data-form="examination-1"') :][:600]
    assert 'data-sdv="changed"' in cell
    # Verified again: the new values are what is verified now.
    services.source_verify(record=exam, user=monitor)
    assert record_sdv(record=exam).status == SdvStatus.VERIFIED
    assert SourceVerification.objects.count() == 2  # the first one is kept


def test_the_worklist_puts_changed_forms_first_then_unverified(
    client, monitor, andrologist, exam, screening_visit
):
    services.source_verify(record=exam, user=monitor)
    semen = screening_visit.labs_semenanalysis_set.get(sequence=1)
    services.source_verify(record=semen, user=monitor)
    semen.volume_ml = Decimal("2.2")
    patient_services.crf_save(record=semen, user=andrologist, reason="lab sheet re-read")
    rows = sdv_worklist(user=monitor)
    assert rows[0].record.pk == semen.pk and rows[0].status == SdvStatus.CHANGED
    assert rows[-1].record.pk == exam.pk and rows[-1].status == SdvStatus.VERIFIED
    assert {r.status for r in rows[1:-1]} == {SdvStatus.PENDING}
    client.force_login(monitor)
    html = client.get(reverse("monitoring:sdv-list"), {"status": "changed"}).content.decode()
    assert "Changed since verification: <strong>1</strong>" in html
    assert "Source-verified: <strong>1</strong>" in html
    assert (
        html.count('<tr data-status="changed">') == 1 and '<tr data-status="pending">' not in html
    )


def test_only_a_monitor_of_the_site_verifies(
    client, andrologist, coordinator, exam, consented_patient, screening_visit, other_site
):
    url = _verify_url(consented_patient, screening_visit)
    for user in (andrologist, coordinator):
        client.force_login(user)
        assert client.post(url).status_code == 403
    client.force_login(make_user("otto", "Monitor", other_site))
    assert client.post(url).status_code == 404
    assert client.get(reverse("monitoring:sdv-list")).status_code == 200
    assert not SourceVerification.objects.exists()


def test_the_worklist_covers_only_the_monitors_sites(monitor, exam, other_site, other_patient):
    outsider = make_user("otto", "Monitor", other_site)
    assert [r.record.pk for r in sdv_worklist(user=outsider)] == []
    assert exam.pk in {r.record.pk for r in sdv_worklist(user=monitor)}


def test_a_voided_or_missing_form_cannot_be_verified(
    client, monitor, andrologist, exam, consented_patient, screening_visit
):
    patient_services.crf_void(record=exam, user=andrologist, reason="wrong patient")
    with pytest.raises(ValidationError):
        services.source_verify(record=exam, user=monitor)
    client.force_login(monitor)
    response = client.post(_verify_url(consented_patient, screening_visit), follow=True)
    assert "Only an entered form can be source-verified." in response.content.decode()
    assert not SourceVerification.objects.exists()


def test_the_worklist_reads_a_bounded_number_of_queries(
    monitor, exam, django_assert_max_num_queries
):
    from core import crf

    with django_assert_max_num_queries(len(crf.all_definitions()) + 4):
        rows = sdv_worklist(user=monitor)
        [r.record.visit.patient.study_id for r in rows]


def test_a_verification_cannot_be_changed_or_deleted(monitor, exam):
    verification = services.source_verify(record=exam, user=monitor)
    with pytest.raises(PermissionError):
        verification.save()
    with pytest.raises(PermissionError):
        verification.delete()


@pytest.mark.postgres
def test_the_database_refuses_to_rewrite_a_verification(monitor, exam):
    services.source_verify(record=exam, user=monitor)
    for sql in (
        "UPDATE monitoring_sourceverification SET record_hash = 'forged'",
        "DELETE FROM monitoring_sourceverification",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert SourceVerification.objects.get().record_hash != "forged"


def test_the_worklist_page_reads_the_same_queries_and_only_its_rows_at_3_and_30_patients(
    client, site, andrologist, monitor, django_assert_max_num_queries
):
    """The database filters, counts, orders and cuts the page: ten times the patients, the
    same queries, and no more forms read than the page shows (plus the few edited since
    their verification, which are hashed)."""
    from django.db.models.signals import post_init
    from django.test.utils import CaptureQueriesContext

    from patients.models import CrfRecord

    from ..conftest import enrol, give_consent

    def add_patients(n):
        for _ in range(n):
            patient = enrol(site, andrologist)
            give_consent(patient, andrologist)
            visit = patient.visits.get(definition__code="SCR")
            complete_screening(visit, andrologist)
            semen = visit.labs_semenanalysis_set.get(sequence=1)
            services.source_verify(record=semen, user=monitor)
            semen.volume_ml += Decimal("0.1")
            patient_services.crf_save(record=semen, user=andrologist, reason="re-read")

    loaded = []

    def count_forms(sender, instance, **kwargs):
        if isinstance(instance, CrfRecord):
            loaded.append(instance)

    client.force_login(monitor)
    url = reverse("monitoring:sdv-list")
    queries = {}
    for n, more in ((3, 3), (30, 27)):
        add_patients(more)
        loaded.clear()
        post_init.connect(count_forms)
        try:
            with django_assert_max_num_queries(19), CaptureQueriesContext(connection) as ctx:
                html = client.get(url).content.decode()
        finally:
            post_init.disconnect(count_forms)
        queries[n] = len(ctx)
        assert f"Changed since verification: <strong>{n}</strong>" in html
        assert html.count("<tr data-status=") == min(50, n * 10)
        # The page's forms, and the n forms edited after their verification (hashed).
        assert len(loaded) <= min(50, n * 10) + n
    assert queries[3] == queries[30]
