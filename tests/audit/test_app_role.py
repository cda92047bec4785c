"""Production connects as a role that owns no table (DATABASE_APP_ROLE, audit/dbroles.py): the
whole application works through it, and PostgreSQL's privilege system refuses it everything
that would switch the audit trail off or undo a record. The table owner can do those things,
which is why the application must not connect as the owner."""

from decimal import Decimal

import psycopg2
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from psycopg2 import sql

from audit.chain import verify_audit_trail
from audit.dbroles import app_role_grant
from audit.models import AuditEntry
from monitoring.models import Signature
from patients.services import crf_save

from ..conftest import sign_in
from ..factories import complete_screening, today_minus
from ..followup.factories import procedure_day

pytestmark = pytest.mark.postgres

INSUFFICIENT_PRIVILEGE = "42501"


@pytest.fixture
def app_role(worker_id):
    """A role like production's, that the test's own login may SET ROLE to. Roles belong to
    the whole cluster, so it is created (and dropped) by the superuser, one per test process."""
    db = settings.DATABASES["default"]
    name = f"edc_app_test_{worker_id}"
    su = psycopg2.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user="postgres", dbname="postgres"
    )
    su.autocommit = True
    role, login = sql.Identifier(name), sql.Identifier(db["USER"])
    with su.cursor() as cursor:
        cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
        cursor.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
        cursor.execute(sql.SQL("GRANT {} TO {}").format(role, login))
    yield name
    with su.cursor() as cursor:
        cursor.execute(sql.SQL("DROP ROLE {}").format(role))
    su.close()


def act_as(role):
    """From here to the end of the test's transaction, every statement runs with `role`'s
    privileges only (its grants are in the same transaction, rolled back afterwards)."""
    app_role_grant(connection, role)
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)).as_string(cursor.cursor))
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == role


def test_the_application_works_as_a_role_that_owns_no_table(app_role, db, request, client):
    act_as(app_role)
    # Enrolment, consent, every screening CRF, a correction with its reason, the procedure day
    # (which creates the follow-up visits): the services, as the role.
    andrologist = request.getfixturevalue("andrologist")
    visit = request.getfixturevalue("screening_visit")
    patient = visit.patient
    complete_screening(visit, andrologist)
    hormones = visit.labs_hormoneprofile_set.get()
    hormones.fsh = Decimal("24.1")
    crf_save(record=hormones, user=andrologist, reason="Transcription error, lab report")
    procedure_day(patient, andrologist, on=today_minus(5))
    # The web: log in, read the patient page, sign the screening visit with the password.
    sign_in(client, "alice")  # password, then the authenticator's code
    assert client.get(reverse("patients:patient-detail", args=[patient.uuid])).status_code == 200
    response = client.post(
        reverse("monitoring:sign-visit", args=[patient.uuid, visit.uuid]),
        {"username": "alice", "password": "correct-horse-battery", "meaning": "approval"}
        | {"agree": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert (
        Signature.objects.filter(patient=patient, visit=visit, revocation__isnull=True).count() == 1
    )
    correction = AuditEntry.objects.get(patient=patient, field_name="fsh", action="update")
    assert (correction.old_value, correction.new_value) == ("22.50", "24.10")
    # Every row the role wrote is hash-chained (the heads are written as the owner).
    assert correction.chain == f"patient:{patient.pk}"
    assert verify_audit_trail().intact


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE labs_semenanalysis DISABLE TRIGGER edc_capture",
        "ALTER TABLE patients_patient DISABLE TRIGGER ALL",
        "DROP TRIGGER edc_no_delete ON labs_hormoneprofile",
        "CREATE TRIGGER edc_off BEFORE INSERT ON audit_auditentry "
        "FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        "TRUNCATE audit_auditentry",
        "TRUNCATE labs_semenanalysis",
        "DELETE FROM patients_patient",
        "DELETE FROM audit_auditentry",
        "UPDATE audit_auditentry SET reason = 'rewritten'",
        "UPDATE monitoring_signature SET meaning = 'rewritten'",
        "UPDATE audit_chainhead SET seq = 0",
        "INSERT INTO audit_chainhead VALUES ('patient:0', 9, 'forged', now())",
        "SET session_replication_role = replica",
    ],
)
def test_the_application_role_cannot_switch_the_audit_trail_off(app_role, db, statement):
    act_as(app_role)
    with (
        pytest.raises(DatabaseError) as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    # Refused by the privilege system itself, not only by a trigger the owner could drop.
    assert refused.value.__cause__.pgcode == INSUFFICIENT_PRIVILEGE, refused.value


def test_the_owner_can_disable_a_trigger_which_is_why_the_app_must_not_connect_as_it(db):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE labs_semenanalysis DISABLE TRIGGER edc_capture")
        cursor.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'edc_capture' "
            "AND tgrelid = 'labs_semenanalysis'::regclass"
        )
        assert cursor.fetchone()[0] == "D"  # disabled (the test's transaction rolls it back)


def test_a_missing_or_superuser_role_is_refused_with_a_clear_message(db):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="no such role"):
        app_role_grant(connection, "edc_no_such_role")
    with pytest.raises(ImproperlyConfigured, match="superuser"):
        app_role_grant(connection, "postgres")


def test_the_deployment_check_warns_when_the_app_connects_as_the_owner(app_role, db):
    from audit.checks import application_role_cannot_disable_triggers as check

    as_owner = check(None, databases=["default"])
    assert [w.id for w in as_owner] == ["audit.W001"]
    # As the tables' owner (CI) or as a superuser (the README's local command).
    assert "owner of the audit tables" in as_owner[0].msg or "superuser" in as_owner[0].msg
    act_as(app_role)
    assert check(None, databases=["default"]) == []
