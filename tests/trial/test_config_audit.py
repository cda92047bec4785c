"""Study configuration is audited like clinical data (issue 11, finding 6): the protocol, its
sites and site memberships, visit definitions, consent versions and users' roles. A change made
in the Django admin, by the protocol file or in SQL writes rows to the one audit trail (who,
when, old, new, why), and a consent version patients have signed can be superseded, never
edited."""

import io
import json
from datetime import date

import pytest
from django import forms
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry, AuthEvent
from core.roles import Role
from trial import protocol_file
from trial.models import ConsentVersion, Protocol, SiteMembership, StudySite, VisitDefinition
from trial.selectors import current_consent_version
from trial.services import protocol_load, study_config_save

from ..audit.test_access_change_actor import _user_change_form


def _rows(instance, **filters):
    return AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(type(instance)),
        object_id=instance.pk,
        **filters,
    )


def _admin_form_data(response) -> dict:
    """What the admin change page would post back unchanged: its form and inline forms."""
    data = {}

    def add(form):
        for field in form:
            value = field.value()
            if value is None or isinstance(field.field, forms.FileField):
                continue
            if isinstance(value, bool):
                if value:
                    data[field.html_name] = "on"
                continue
            value = field.field.prepare_value(value)
            data[field.html_name] = "" if value is None else value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for field in formset.management_form:
            data[field.html_name] = field.value()
        for form in formset.forms:
            add(form)
    return data


def _change_page(client, instance):
    opts = instance._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])
    response = client.get(url)
    assert response.status_code == 200
    return url, response


@pytest.fixture
def admin_client_as_adam(client, admin_user):
    client.force_login(admin_user)
    return client


# ---- the Django admin: every config model, old -> new, with the reason ---------------------


def test_a_protocol_and_visit_window_changed_in_the_admin_are_audited_with_the_reason(
    admin_client_as_adam, admin_user, protocol
):
    client = admin_client_as_adam
    m4 = protocol.visits.get(code="M4")
    url, page = _change_page(client, protocol)
    data = _admin_form_data(page)
    data["title"] = "A new title"
    index = next(i for i in range(20) if data.get(f"visits-{i}-id") == m4.pk)
    data[f"visits-{index}-window_after"] = 21
    data["reason_for_change"] = "Protocol amendment 3: M4 window widened"
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    title = _rows(protocol, field_name="title", action="update").get()
    window = _rows(m4, field_name="window_after", action="update").get()
    for row, old, new in ((title, protocol.title, "A new title"), (window, "14", "21")):
        assert (row.action, row.old_value, row.new_value) == ("update", old, new)
        assert row.user == admin_user and row.user_name == "adam"
        assert row.reason == "Protocol amendment 3: M4 window widened"
        assert row.patient is None and row.channel == "web"


def test_a_site_renamed_and_a_membership_removed_in_the_admin_are_audited(
    admin_client_as_adam, admin_user, site, andrologist, coordinator
):
    client = admin_client_as_adam
    membership = SiteMembership.objects.get(user=coordinator, site=site)
    url, page = _change_page(client, site)
    data = _admin_form_data(page)
    data["name"] = "Urology department, new building"
    index = next(i for i in range(20) if data.get(f"memberships-{i}-id") == membership.pk)
    data[f"memberships-{index}-DELETE"] = "on"
    data["reason_for_change"] = "Carol left the study"
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    name = _rows(site, field_name="name", action="update").get()
    assert (name.old_value, name.new_value, name.reason) == (
        "University urology department",
        "Urology department, new building",
        "Carol left the study",
    )
    # The membership is gone, its values kept: who had access to which site.
    assert not SiteMembership.objects.filter(pk=membership.pk).exists()
    removed = {r.field_name: r for r in _rows(membership, action="delete")}
    assert removed["user"].old_value == f"carol (#{coordinator.pk})"
    assert removed["site"].old_value.startswith("BEN")
    assert all(r.new_value == "" and r.user_name == "adam" for r in removed.values())
    assert removed["user"].reason == "Carol left the study"
    # The site's history page reads without a patient.
    history = client.get(reverse("audit:record-history", args=["trial.StudySite", site.uuid]))
    assert history.status_code == 200 and "Carol left the study" in history.content.decode()
    # ...and the access log still has its event.
    assert AuthEvent.objects.filter(
        kind="site_change", username="carol", detail="site removed: BEN", actor_name="adam"
    ).exists()


def test_a_consent_version_nobody_signed_stays_editable_and_its_change_is_audited(
    admin_client_as_adam, protocol
):
    client = admin_client_as_adam
    version = protocol.consent_versions.get(version="1.0")
    url, page = _change_page(client, version)
    data = _admin_form_data(page)
    data.update(effective_date="2020-02-01", reason_for_change="Typo: ethics approval date")
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    row = _rows(version, field_name="effective_date", action="update").get()
    assert (row.old_value, row.new_value, row.reason) == (
        "2020-01-01",
        "2020-02-01",
        "Typo: ethics approval date",
    )


def test_a_change_without_a_reason_is_refused_with_a_message_and_keeps_what_was_typed(
    admin_client_as_adam, protocol
):
    client = admin_client_as_adam
    url, page = _change_page(client, protocol)
    data = _admin_form_data(page)
    data["title"] = "Typed, not yet saved"
    response = client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Give a reason for this change" in html
    assert 'value="Typed, not yet saved"' in html
    protocol.refresh_from_db()
    assert protocol.title != "Typed, not yet saved"
    assert not _rows(protocol, action="update").exists()


def test_a_new_record_needs_no_reason(admin_client_as_adam, protocol):
    response = admin_client_as_adam.post(
        reverse("admin:trial_studysite_add"),
        {
            "protocol": protocol.pk,
            "code": "CAI",
            "name": "Cairo clinic",
            "memberships-TOTAL_FORMS": 0,
            "memberships-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302
    site = StudySite.objects.get(code="CAI")
    assert {(r.action, r.field_name, r.new_value) for r in _rows(site)} >= {
        ("create", "code", "CAI"),
        ("create", "name", "Cairo clinic"),
    }


# ---- users' roles ---------------------------------------------------------------------------


def test_a_role_change_in_the_admin_is_on_the_audit_trail_and_in_the_access_log(
    admin_client_as_adam, admin_user, andrologist
):
    client = admin_client_as_adam
    monitor_group = Group.objects.get_or_create(name=Role.MONITOR)[0]
    data = _user_change_form(
        andrologist,
        groups=[*andrologist.groups.values_list("pk", flat=True), monitor_group.pk],
        reason_for_change="Also monitors the AND site",
    )
    url = reverse("admin:auth_user_change", args=[andrologist.pk])
    assert client.post(url, data).status_code == 302
    row = _rows(andrologist, field_name="roles").latest("id")
    assert (row.old_value, row.new_value) == ("Andrologist", "Andrologist, Monitor")
    assert (row.user_name, row.reason, row.action) == (
        "adam",
        "Also monitors the AND site",
        "update",
    )
    assert AuthEvent.objects.filter(
        kind="role_change", username="alice", detail="roles added: Monitor"
    ).exists()
    # The reason is required there too.
    data.pop("reason_for_change")
    response = client.post(url, data)
    assert (
        response.status_code == 200 and "Give a reason for this change" in response.content.decode()
    )


# ---- the consent version patients signed: superseded, never edited --------------------------


def test_a_signed_consent_version_cannot_be_edited_by_the_service_or_the_model(
    consented_patient, protocol
):
    version = protocol.consent_versions.get(version="1.0")
    version.effective_date = date(2021, 1, 1)
    with pytest.raises(ValidationError, match="Patients have signed consent version 1.0"):
        study_config_save(version, user=None, reason="Try")
    with pytest.raises(ValidationError) as refused:
        version.full_clean()
    assert "effective_date" in refused.value.message_dict
    version.refresh_from_db()
    assert version.effective_date == date(2020, 1, 1)
    # The protocol file cannot change it either.
    assert not _rows(version, action="update").exists()


def test_the_admin_shows_a_signed_version_read_only_and_says_why(
    admin_client_as_adam, consented_patient, protocol
):
    client = admin_client_as_adam
    version = protocol.consent_versions.get(version="1.0")
    url, page = _change_page(client, version)
    html = page.content.decode()
    assert "Patients have signed version 1.0" in html
    for name in ("version", "effective_date", "document"):
        assert f'name="{name}"' not in html
    # A post that names them anyway changes nothing.
    response = client.post(
        url,
        {
            "protocol": protocol.pk,
            "version": "9.9",
            "effective_date": "2021-01-01",
            "reason_for_change": "Try",
        },
    )
    assert response.status_code == 302
    version.refresh_from_db()
    assert (version.version, version.effective_date) == ("1.0", date(2020, 1, 1))


def test_a_new_version_with_a_later_date_supersedes_the_signed_one(
    admin_client_as_adam, consented_patient, protocol
):
    today = timezone.localdate()
    response = admin_client_as_adam.post(
        reverse("admin:trial_consentversion_add"),
        {"protocol": protocol.pk, "version": "2.0", "effective_date": today.isoformat()},
    )
    assert response.status_code == 302
    new = ConsentVersion.objects.get(version="2.0")
    assert _rows(new, action="create", field_name="version").get().user_name == "adam"
    assert current_consent_version(protocol=protocol) == new
    # The patient's consent still shows the version signed.
    assert consented_patient.consents.get().consent_version.version == "1.0"


@pytest.mark.postgres
def test_the_database_refuses_to_change_a_signed_version(consented_patient, protocol):
    version = protocol.consent_versions.get(version="1.0")
    for sql in (
        "UPDATE trial_consentversion SET effective_date = '2021-01-01' WHERE id = %s",
        "UPDATE trial_consentversion SET version = '1.0b' WHERE id = %s",
        "UPDATE trial_consentversion SET document = 'other.pdf' WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="has signed consents"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [version.pk])
    version.refresh_from_db()
    assert (version.version, version.effective_date) == ("1.0", date(2020, 1, 1))
    # A version nobody signed may still be changed in SQL: recorded as a database change.
    draft = study_config_save(
        ConsentVersion(protocol=protocol, version="2.0", effective_date=date(2030, 1, 1)),
        user=None,
        reason="Draft",
    )[0].object_id
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE trial_consentversion SET effective_date = '2030-02-01' WHERE id = %s", [draft]
        )
    row = AuditEntry.objects.get(object_id=draft, field_name="effective_date", action="update")
    assert row.user_name.startswith("database:") and row.new_value == "2030-02-01"


# ---- changes outside the application: the same triggers ------------------------------------


@pytest.mark.postgres
def test_config_changed_in_sql_or_by_queryset_update_is_recorded_by_the_database(
    protocol, site, andrologist
):
    m4 = protocol.visits.get(code="M4")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE trial_visitdefinition SET window_after = 30 WHERE id = %s", [m4.pk])
    Protocol.objects.filter(pk=protocol.pk).update(reminder_lead_days=3)
    membership = SiteMembership.objects.get(user=andrologist, site=site)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM trial_sitemembership WHERE id = %s", [membership.pk])
        cursor.execute(
            "INSERT INTO auth_user_groups (user_id, group_id) VALUES (%s, %s)",
            [andrologist.pk, Group.objects.get_or_create(name=Role.MONITOR)[0].pk],
        )
    window = _rows(m4, field_name="window_after", action="update").get()
    assert (window.old_value, window.new_value) == ("14", "30")
    lead = _rows(protocol, field_name="reminder_lead_days", action="update").get()
    assert (lead.old_value, lead.new_value) == ("7", "3")
    deleted = _rows(membership, action="delete", field_name="user_id").get()
    assert (deleted.old_value, deleted.new_value) == (str(andrologist.pk), "")
    role = _rows(andrologist, field_name="roles", user_name__startswith="database:").get()
    assert (role.old_value, role.new_value) == ("", "Monitor")
    for row in (window, lead, deleted, role):
        assert row.user_name.startswith("database:")
        assert row.reason == "Changed outside the application (recorded by the database)"
    # Configuration is kept like clinical data: no deletion of a visit definition.
    with (
        pytest.raises(DatabaseError, match="never deleted"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM trial_visitdefinition WHERE id = %s", [m4.pk])


@pytest.mark.postgres
def test_the_application_writes_config_once_not_twice(protocol, andrologist):
    """Through the audited path, the database trigger stays silent: one row per change."""
    assert not AuditEntry.objects.filter(user_name__startswith="database:").exists()
    andrologist.groups.add(Group.objects.get_or_create(name=Role.MONITOR)[0])
    assert not AuditEntry.objects.filter(user_name__startswith="database:").exists()
    assert _rows(andrologist, field_name="roles").count() == 2  # the fixture's, this one


# ---- the protocol file, the demo ------------------------------------------------------------


def test_loading_the_protocol_file_is_audited_and_a_reload_writes_nothing(db, settings, tmp_path):
    protocol = protocol_load(path=settings.PROTOCOL_FILE)
    created = _rows(protocol, action="create")
    assert created.filter(field_name="registry_id", new_value="NCT02025270").exists()
    assert {r.reason for r in created} == {"Loaded from the protocol file nct02025270.json"}
    assert created.first().user_name == "system"
    count = AuditEntry.objects.count()
    protocol_load(path=settings.PROTOCOL_FILE)
    assert AuditEntry.objects.count() == count

    data = protocol_file.read(settings.PROTOCOL_FILE)
    next(v for v in data["visits"] if v["code"] == "M6")["window_before"] = 7
    amended = tmp_path / "amendment.json"
    amended.write_text(json.dumps(data))
    call_command("load_protocol", str(amended), reason="Amendment 2", stdout=io.StringIO())
    m6 = VisitDefinition.objects.get(code="M6")
    row = _rows(m6, field_name="window_before", action="update").get()
    assert (row.old_value, row.new_value, row.reason) == ("14", "7", "Amendment 2")


def test_the_protocol_file_cannot_change_a_signed_consent_version(
    consented_patient, settings, tmp_path
):
    data = protocol_file.read(settings.PROTOCOL_FILE)
    data["consent_versions"][0]["effective_date"] = "2019-06-01"
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValidationError, match="add a new consent version"):
        protocol_load(path=path)


# ---- the audit-trail page: configuration rows have no patient ------------------------------


def test_an_admin_finds_configuration_changes_on_the_audit_trail_page(
    admin_client_as_adam, protocol, monitor, client
):
    m4 = protocol.visits.get(code="M4")
    m4.window_after = 20
    study_config_save(m4, user=None, reason="Amendment 4")
    response = admin_client_as_adam.get(reverse("audit:trail"), {"record_type": "configuration"})
    assert response.status_code == 200
    rows = list(response.context["page_obj"])
    assert rows and all(r.is_study_configuration and r.patient_id is None for r in rows)
    assert any(r.reason == "Amendment 4" for r in rows)
    assert 'data-testid="config-row"' in response.content.decode()
    clinical = admin_client_as_adam.get(reverse("audit:trail"), {"record_type": "clinical"})
    assert not any(r.is_study_configuration for r in clinical.context["page_obj"])
    csv = admin_client_as_adam.get(
        reverse("audit:trail"), {"record_type": "configuration", "format": "csv"}
    )
    assert "Amendment 4" in b"".join(csv.streaming_content).decode()
    # A monitor sees their sites' patients, not the configuration (no patient on the rows).
    client.force_login(monitor)
    seen = client.get(reverse("audit:trail"), {"record_type": "configuration"})
    assert seen.status_code == 200 and not list(seen.context["page_obj"])
