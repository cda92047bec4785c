"""The automated OQ checks of STANDARDS.md §1.5, each named with its id."""

from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.utils import DatabaseError, IntegrityError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry, AuthEvent
from labs.models import SemenAnalysis
from monitoring import services as monitoring
from monitoring.models import Signature
from monitoring.selectors import signature_status
from patients import services
from patients.models import Examination

from ..exports.conftest import celery_conf
from ..factories import complete_screening, save_crf

pg_only = pytest.mark.postgres


def _sign(rf, user, patient, visit=None, password="correct-horse-battery"):
    request = rf.post("/sign/")
    request.user = user
    return monitoring.signature_sign(
        request=request,
        patient=patient,
        visit=visit,
        username=user.username,
        password=password,
        meaning=Signature.Meaning.INVESTIGATOR_APPROVAL,
        user=user,
        agree=True,
    )


# ---- audit trail -------------------------------------------------------------------------


def test_T_AT_01_a_create_writes_history_with_user_utc_time_and_all_values(
    screening_visit, andrologist
):
    exam = save_crf("examination", screening_visit, andrologist)
    rows = AuditEntry.objects.filter(form_code="examination", object_id=exam.pk)
    assert {r.action for r in rows} == {"create"}
    assert {r.user_name for r in rows} == {"alice"} and {r.user for r in rows} == {andrologist}
    values = {r.field_name: r.new_value for r in rows}
    assert values["height_cm"] == "176" and values["left_volume_ml"] == "10"
    assert values["volume_method"] == "ORCHIDOMETERY"
    assert all(r.timestamp.utcoffset() == timedelta(0) for r in rows)


def test_T_AT_02_an_update_needs_a_reason_and_keeps_the_prior_row(screening_visit, andrologist):
    exam = save_crf("examination", screening_visit, andrologist)
    created = list(AuditEntry.objects.filter(form_code="examination").values())
    exam.weight_kg = Decimal("90")
    with pytest.raises(ValidationError):
        services.crf_save(record=exam, user=andrologist, reason="  ")
    services.crf_save(record=exam, user=andrologist, reason="Scale recalibrated")
    assert (
        list(AuditEntry.objects.filter(form_code="examination", action="create").values())
        == created
    )
    update = AuditEntry.objects.get(form_code="examination", action="update")
    assert (update.old_value, update.new_value, update.reason) == ("80", "90", "Scale recalibrated")


@pg_only
def test_T_AT_03_the_database_refuses_update_and_delete_of_the_audit_tables(consented_patient):
    assert AuditEntry.objects.exists() and AuthEvent.objects.exists() is not None
    for sql in (
        "UPDATE audit_auditentry SET new_value = 'forged'",
        "DELETE FROM audit_auditentry",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as c,
        ):
            c.execute(sql)
    AuthEvent.objects.create(kind="login", username="x")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as c,
    ):
        c.execute("DELETE FROM audit_authevent")
    with pytest.raises(PermissionError):
        AuditEntry.objects.first().delete()


@pg_only
def test_T_AT_04_queryset_update_and_raw_sql_are_still_captured(screening_visit, andrologist):
    exam = save_crf("examination", screening_visit, andrologist)
    Examination.objects.filter(pk=exam.pk).update(weight_kg=Decimal("70"))  # bypasses the services
    with connection.cursor() as cursor:
        cursor.execute("UPDATE patients_examination SET height_cm = 150 WHERE id = %s", [exam.pk])
    captured = AuditEntry.objects.filter(object_id=exam.pk, user__isnull=True, action="update")
    changes = {(e.field_name, e.old_value, e.new_value) for e in captured}
    assert ("weight_kg", "80.0", "70.0") in changes
    assert ("height_cm", "176.0", "150.0") in changes
    assert {e.user_name for e in captured} == {
        f"database:{connection.settings_dict['USER'] or 'postgres'}"
    }
    # Hard deletion of a clinical row is refused outright.
    with (
        pytest.raises(DatabaseError, match="never deleted"),
        transaction.atomic(),
        connection.cursor() as c,
    ):
        c.execute("DELETE FROM patients_examination")


def test_T_AT_05_logins_failures_logouts_and_permission_changes_are_logged(
    client, andrologist, site, other_site
):
    from trial.services import site_membership_add

    client.post(reverse("login"), {"username": "alice", "password": "wrong-password"})
    client.post(reverse("login"), {"username": "alice", "password": "correct-horse-battery"})
    client.post(reverse("logout"))
    andrologist.groups.add(Group.objects.get_or_create(name="Monitor")[0])
    site_membership_add(user=andrologist, site=other_site)
    kinds = list(
        AuthEvent.objects.filter(username="alice").order_by("id").values_list("kind", flat=True)
    )
    assert kinds[-5:] == ["login_failed", "login", "logout", "role_change", "site_change"]
    assert AuthEvent.objects.filter(
        kind="role_change", username="alice", detail="roles added: Monitor"
    ).exists()


def test_T_AT_06_the_history_of_one_form_shows_the_complete_chain(
    client, consented_patient, screening_visit, andrologist
):
    exam = save_crf("examination", screening_visit, andrologist)
    for weight, reason in (("81", "typo"), ("82", "re-weighed")):
        exam.weight_kg = Decimal(weight)
        services.crf_save(record=exam, user=andrologist, reason=reason)
    client.force_login(andrologist)
    html = client.get(
        reverse("audit:record-history", args=["patients.Examination", exam.uuid])
    ).content.decode()
    chain = [html.index(s) for s in ("weight_kg", ">80<", ">81<", "typo", ">82<", "re-weighed")]
    assert chain == sorted(chain)


# ---- electronic signatures ---------------------------------------------------------------


def test_T_ES_01_signing_needs_username_and_password_failures_are_logged_and_lock(
    client, consented_patient, screening_visit, andrologist, settings
):
    complete_screening(screening_visit, andrologist)
    client.force_login(andrologist)
    url = reverse("monitoring:sign-visit", args=[consented_patient.uuid, screening_visit.uuid])
    form = client.get(url).content.decode()
    assert 'name="username"' in form and 'name="password"' in form
    response = client.post(url, {"username": "alice", "password": "nope", "meaning": "approval"})
    assert "not correct: not signed" in response.content.decode()
    assert not Signature.objects.exists()
    assert AuthEvent.objects.filter(kind="signature_failed", username="alice").exists()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"username": "alice", "password": "nope", "meaning": "approval"})
    # Locked: even the right password is refused now.
    client.post(
        url,
        {
            "username": "alice",
            "password": "correct-horse-battery",
            "meaning": "approval",
            "agree": "on",
        },
    )
    assert not Signature.objects.exists()
    assert AuthEvent.objects.filter(kind="lockout", username="alice").exists()


def test_T_ES_02_name_time_and_meaning_appear_on_screen(
    client, rf, consented_patient, screening_visit, andrologist
):
    complete_screening(screening_visit, andrologist)
    signature = _sign(rf, andrologist, consented_patient, screening_visit)
    client.force_login(andrologist)
    html = client.get(
        reverse("patients:patient-detail", args=[consented_patient.uuid])
    ).content.decode()
    local = timezone.localtime(signature.signed_at)
    assert "Alice" in html and f"{local:%d %b %Y %H:%M}" in html
    assert "I confirm the data are accurate and complete" in html
    assert signature.signed_at.utcoffset() == timedelta(0)


def test_T_ES_03_changing_signed_data_invalidates_the_signature(
    rf, consented_patient, screening_visit, andrologist, admin_user
):
    complete_screening(screening_visit, andrologist)
    signature = _sign(rf, andrologist, consented_patient, screening_visit)
    assert signature_status(signature) == "valid"
    analysis = SemenAnalysis.objects.get(sequence=1)
    analysis.volume_ml = Decimal("3.0")
    with pytest.raises(ValidationError, match="locked"):  # the app refuses edits
        services.crf_save(record=analysis, user=andrologist, reason="typo")
    # A change that bypasses the app is detected by the hash: re-signing is required.
    SemenAnalysis.objects.filter(pk=analysis.pk).update(volume_ml=Decimal("3.0"))
    signature.refresh_from_db()
    assert signature_status(signature) == "invalidated"


def test_T_ES_04_a_signature_cannot_be_re_pointed(
    rf, consented_patient, screening_visit, andrologist, other_patient
):
    complete_screening(screening_visit, andrologist)
    signature = _sign(rf, andrologist, consented_patient, screening_visit)
    signature.patient = other_patient
    with pytest.raises(PermissionError):
        signature.save()
    with pytest.raises(PermissionError):
        signature.delete()
    if connection.vendor == "postgresql":
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as c,
        ):
            c.execute("UPDATE monitoring_signature SET patient_id = %s", [other_patient.pk])
    assert Signature.objects.get().patient == consented_patient


# ---- security ----------------------------------------------------------------------------


def test_T_SEC_01_an_idle_session_expires(client, andrologist, settings):
    from django.contrib.sessions.models import Session

    client.force_login(andrologist)
    assert client.get(reverse("home")).status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))  # idle too long
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_T_SEC_02_lockout_after_repeated_failed_logins_alerts_the_admins(
    client, andrologist, admin_user, settings, django_capture_on_commit_callbacks
):
    admin_user.email = "admin@example.org"
    admin_user.save()
    # The alert is a Celery task queued when the request commits (accounts.lockout).
    with (
        celery_conf(task_always_eager=True),
        django_capture_on_commit_callbacks(execute=True),
    ):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    response = client.post(
        reverse("login"), {"username": "alice", "password": "correct-horse-battery"}
    )
    assert response.status_code == 429 or "locked" in response.content.decode().lower()
    assert client.get(reverse("home")).status_code == 302  # not logged in
    assert AuthEvent.objects.filter(kind="lockout", username="alice").exists()
    alert = next(m for m in mail.outbox if "alice" in m.subject and "admin@example.org" in m.to)
    assert "ends by itself after 30 minutes" in alert.body and "Unlock now" in alert.body


def test_T_SEC_03_password_validators_are_enforced(andrologist):
    from django.contrib.auth.forms import SetPasswordForm

    for weak in ("password", "12345678901", "alice"):
        form = SetPasswordForm(andrologist, {"new_password1": weak, "new_password2": weak})
        assert not form.is_valid()
    strong = "a-Long pass phrase 42"
    assert SetPasswordForm(
        andrologist, {"new_password1": strong, "new_password2": strong}
    ).is_valid()


def test_T_SEC_04_users_are_deactivated_never_deleted_and_names_never_reused(
    client, andrologist, admin_user
):
    from django.db.models import ProtectedError

    with pytest.raises((PermissionError, ProtectedError)), transaction.atomic():
        andrologist.delete()  # referenced by the trail: protected
    newcomer = get_user_model().objects.create_user("newcomer", password="a-long-pass-phrase")
    with pytest.raises(PermissionError), transaction.atomic():
        newcomer.delete()  # even an account nobody references
    andrologist.is_active = False
    andrologist.save()
    assert AuthEvent.objects.filter(kind="account_change", detail="account deactivated").exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        get_user_model().objects.create_user("alice", password="another-long-pass")
    client.force_login(admin_user)
    change = client.get(reverse("admin:auth_user_change", args=[andrologist.pk])).content.decode()
    assert 'name="username"' not in change  # read-only
    assert client.get(reverse("admin:auth_user_delete", args=[andrologist.pk])).status_code == 403


def test_T_CLK_01_stored_times_are_utc_with_offset(screening_visit, andrologist):
    save_crf("examination", screening_visit, andrologist)
    entry = AuditEntry.objects.first()
    entry_time = AuditEntry.objects.values_list("timestamp", flat=True).first()
    assert entry_time.tzinfo is not None and entry_time.utcoffset() == timedelta(0)
    assert entry.timestamp.astimezone(UTC) == entry.timestamp
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'audit_auditentry' AND column_name = 'timestamp'"
            )
            assert cursor.fetchone()[0] == "timestamp with time zone"
