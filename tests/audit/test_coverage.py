"""The audit mechanism covers every clinical model without per-model code."""

import io

import pytest
from django.db import connection

from audit import dbtriggers
from core import crf


def test_every_clinical_model_is_known_to_the_audit_mechanism():
    models = dbtriggers.clinical_models()
    names = {m.__name__ for m in models}
    assert {
        "Patient",
        "PatientIdentity",
        "Consent",
        "Visit",
        "Eligibility",
        "SemenAnalysis",
        "HormoneProfile",
        "DataQuery",
        "Signature",
    } <= names
    # Every registered CRF is a clinical model, so it is covered.
    assert {d.model for d in crf.all_definitions()} <= set(models)
    # Opting out is explicit and reviewed here: only operational/configuration tables.
    from django.apps import apps
    from django.conf import settings

    exempt = {
        m.__name__
        for label in settings.AUDITED_APPS
        for m in apps.get_app_config(label).get_models()
        if getattr(m, "audit_exempt", False)
    }
    # SdvFormStatus, SdvRecheck, SdvCount: the SDV status derived from audited rows, its
    # queue and its counts. PatientStatus: the stage and flags derived from audited rows.
    assert exempt == {
        "Reminder",
        "VisitExtension",
        "SdvFormStatus",
        "SdvRecheck",
        "SdvCount",
        "PatientStatus",
    }


@pytest.mark.postgres
@pytest.mark.django_db
def test_every_clinical_table_carries_the_capture_and_no_delete_triggers():
    models = dbtriggers.clinical_models()
    kept = {m._meta.db_table for m in models if not getattr(m, "audit_deletable", False)}
    assert kept <= dbtriggers.installed_tables(connection)
    # Deletable only by saying why (a site membership: access, not data), and then its
    # deletion is captured instead.
    deletable = {m._meta.db_table for m in models if getattr(m, "audit_deletable", False)}
    assert deletable == {"trial_sitemembership"}
    for table in deletable:
        assert dbtriggers.capture_events(connection, table) == {"INSERT", "UPDATE", "DELETE"}


def test_every_crf_save_writes_audit_rows(screening_visit, andrologist):
    """Through the one write path, for every registered screening CRF."""
    from audit.models import AuditEntry

    from ..factories import VALID, save_crf

    for code in VALID:
        record = save_crf(code, screening_visit, andrologist)
        assert AuditEntry.objects.filter(
            form_code=code, object_id=record.pk, action="create"
        ).exists(), code


@pytest.mark.postgres
@pytest.mark.django_db
def test_every_service_write_is_recorded_once_by_the_application():
    """The demo seed goes through every service (enrolment, consent, all CRFs, procedure day,
    schedule, adverse events, end of study, reminders). The database trigger must see none
    of those writes as 'outside the application': each is audited once, with its user."""
    from django.core.management import call_command

    from audit.models import AuditEntry

    call_command("seed_demo", stdout=io.StringIO())
    assert AuditEntry.objects.filter(user_name__startswith="database:").count() == 0
    assert AuditEntry.objects.filter(form_code="injection").exists()
    # Its study configuration too (issue 11, finding 6), as made by the seeding program.
    protocol = AuditEntry.objects.get(
        content_type__app_label="trial", content_type__model="protocol", field_name="registry_id"
    )
    assert protocol.user_name == "system" and protocol.reason.startswith("Demo set-up (seed_demo)")
    roles = AuditEntry.objects.get(object_repr="andrologist", field_name="roles")
    assert (roles.old_value, roles.new_value, roles.reason) == (
        "",
        "Andrologist",
        "Demo account (seed_demo)",
    )


def test_an_adverse_event_has_its_history_page(client, consented_patient, andrologist):
    from datetime import timedelta

    from django.urls import reverse
    from django.utils import timezone

    from followup.services import ADVERSE_EVENTS, adverse_event_create, log_entry_update

    from ..followup.factories import ae_values

    onset = timezone.localdate() - timedelta(days=1)
    event = adverse_event_create(
        patient=consented_patient, data=ae_values(onset=onset), user=andrologist
    )
    log_entry_update(
        ADVERSE_EVENTS, entry=event, data={"ctcae_grade": 2}, user=andrologist, reason="Worsened"
    )
    client.force_login(andrologist)
    form = client.get(
        reverse("followup:ae-edit", args=[consented_patient.uuid, event.uuid])
    ).content.decode()
    assert 'data-testid="history-link"' in form
    history = client.get(
        reverse("audit:record-history", args=["followup.AdverseEvent", event.uuid])
    )
    html = history.content.decode()
    assert "ctcae_grade" in html and "Worsened" in html


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # committed rows: nothing pending when it truncates
def test_truncate_is_refused_on_clinical_and_append_only_tables(consented_patient):
    """TRUNCATE skips row triggers, so it has its own. The test settings allow it for the
    session (Django empties test databases with it); a production session never does."""
    from django.db import transaction
    from django.db.utils import DatabaseError

    from audit.models import AuditEntry

    tables = [m._meta.db_table for m in dbtriggers.clinical_models()]
    tables += list(dbtriggers.APPEND_ONLY_TABLES)
    with connection.cursor() as cursor:
        # information_schema does not list TRUNCATE triggers; the catalogue does.
        cursor.execute(
            "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'edc_no_truncate'"
        )
        assert set(tables) <= {row[0] for row in cursor.fetchall()}
    for table in ("patients_patient", "audit_auditentry", "monitoring_signature"):
        with (
            pytest.raises(DatabaseError, match="cannot be truncated"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("SET LOCAL edc.allow_truncate = 'off'")
            cursor.execute(f"TRUNCATE {table} CASCADE")
    assert AuditEntry.objects.exists()
