"""Direct identifiers in the audit trail (issue 11, finding 1). An identity edit is audited
field by field; on every surface that shows audit values (trail page and CSV, record history,
audit review and its CSVs, the Django admin, the ODM export and the casebook PDF) a user who
may not see the patient's identity reads "[identifier hidden]" instead of the old and new
value, with the field, who, when and why still shown. Staff of the patient's site see the
values (the positive control: without it a "hidden" test could not tell masking from a
missing row). Each surface is read as a monitor, an admin, staff of the other site and staff
of the patient's site, for an edit made in the app and (PostgreSQL) one made in raw SQL."""

import csv
import io
from decimal import Decimal
from xml.etree import ElementTree

import pytest
import xmlschema
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEntry
from core.identifiers import (
    IDENTIFIER_HIDDEN,
    can_see_identity,
    identifier_fields,
    identity_site_ids,
)
from core.roles import Role
from exports import services as export_services
from exports.models import PdfJob
from labs.models import HormoneProfile
from patients import services
from patients.models import Consent, PatientIdentity

from ..conftest import enrol, give_consent, make_user
from ..exports.conftest import pdf_text
from ..exports.test_odm import ODM_XSD
from ..factories import complete_screening, save_crf
from .test_part11 import _sign

NEW_NAME = "Ahmed Newname"
NEW_PHONE = "+20 100 555 0199"
NEW_NATIONAL_ID = "28807071234500"
SQL_PHONE = "+20 122 777 0000"
# The patient at the other site, with values of its own (enrol() gives everyone "+20 111").
OTHER_PHONE = "+20 155 000 4444"
REASON = "Patient gave a new phone number"


def cell(phone: str) -> str:
    """A phone number as the CSV writes it: "+..." could be a formula, so it gets a "'"."""
    return f"'{phone}"


# What no one but staff of BEN may read, and what no one but staff of AND may read.
BEN_SECRETS = ("Secretname", "Newname", NEW_PHONE, NEW_NATIONAL_ID, "29001011234567")
AND_SECRETS = ("Sitename", OTHER_PHONE)
WIDE_PERIOD = {"date_from": "2020-01-01", "date_to": "2035-12-31"}


@pytest.fixture
def identity_edited(consented_patient, andrologist):
    """BEN-001 (Ahmed Secretname) renamed and given a new phone and national id, in the app."""
    services.identity_update(
        identity=consented_patient.identity,
        data={"full_name": NEW_NAME, "phone": NEW_PHONE, "national_id": NEW_NATIONAL_ID},
        user=andrologist,
        reason=REASON,
    )
    return consented_patient


@pytest.fixture
def other_site_identity(other_site, other_andrologist):
    patient = enrol(other_site, other_andrologist, name="Other Sitename")
    give_consent(patient, other_andrologist)
    services.identity_update(
        identity=patient.identity,
        data={"phone": OTHER_PHONE},
        user=other_andrologist,
        reason="New phone",
    )
    return patient


@pytest.fixture
def sql_edited(identity_edited, other_site_identity):
    """Both phones changed again in raw SQL: the capture trigger writes rows with no patient."""
    with connection.cursor() as cursor:
        for patient, phone in ((identity_edited, SQL_PHONE), (other_site_identity, "+20 1 SQL")):
            cursor.execute(
                "UPDATE patients_patientidentity SET phone = %s WHERE id = %s",
                [phone, patient.identity.pk],
            )
    return identity_edited


@pytest.fixture
def ben_staff_admin(site):
    """Staff of BEN who is also an administrator (a small site's investigator often is): the
    one user who opens the audit pages and may also see BEN's identities, not AND's."""
    user = make_user("pia", Role.ADMIN, site, is_staff=True, is_superuser=True)
    user.groups.add(Group.objects.get(name=Role.ANDROLOGIST))
    return user


def _html(client, user, url, params=None) -> str:
    client.force_login(user)
    response = client.get(url, params or {})
    assert response.status_code == 200
    return response.content.decode()


def _csv(client, user, url, params) -> list[dict]:
    client.force_login(user)
    response = client.get(url, params)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def _history_url(patient) -> str:
    return reverse("audit:record-history", args=["patients.patientidentity", patient.identity.uuid])


def _assert_hidden(text: str, secrets=BEN_SECRETS):
    for secret in secrets:
        assert secret not in text, secret
    assert IDENTIFIER_HIDDEN in text


def _identity_rows(rows: list[dict], study_id="BEN-001") -> list[dict]:
    return [r for r in rows if r["record"] == f"Identity of {study_id}"]


# ---- the rule ------------------------------------------------------------------------------------


def test_every_field_of_the_identity_is_an_identifier_and_clinical_fields_are_not():
    assert {"full_name", "phone", "national_id", "address"} <= identifier_fields(PatientIdentity)
    # The database trigger names columns: the foreign key's column counts too.
    assert "patient_id" in identifier_fields(PatientIdentity)
    assert identifier_fields(HormoneProfile) == frozenset()
    # A consent scan stored before generated names kept the uploaded name (it may be his).
    assert identifier_fields(Consent) == {"document"}


def test_the_patients_app_asks_the_same_rule(
    consented_patient, andrologist, coordinator, lab_technician, monitor, admin_user,
    other_andrologist, ben_staff_admin,
):  # fmt: skip
    for user in (andrologist, coordinator, lab_technician, ben_staff_admin):
        assert can_see_identity(user=user, patient=consented_patient)
        assert consented_patient.site_id in identity_site_ids(user=user)
    for user in (monitor, admin_user, other_andrologist):
        assert not can_see_identity(user=user, patient=consented_patient)
        assert consented_patient.site_id not in identity_site_ids(user=user)


# ---- audit trail page and CSV --------------------------------------------------------------------


@pytest.mark.parametrize("role_fixture", ["monitor", "admin_user"])
def test_the_trail_page_hides_identity_values_but_shows_field_who_and_why(
    client, request, role_fixture, identity_edited
):
    user = request.getfixturevalue(role_fixture)
    html = _html(client, user, reverse("audit:trail"), {"username": "alice"})
    _assert_hidden(html)
    assert "<code>phone</code>" in html and "<code>national_id</code>" in html
    assert REASON in html and "alice" in html


@pytest.mark.parametrize("role_fixture", ["monitor", "admin_user"])
def test_the_trail_csv_hides_identity_values_but_shows_field_who_and_why(
    client, request, role_fixture, identity_edited
):
    user = request.getfixturevalue(role_fixture)
    rows = _csv(client, user, reverse("audit:trail"), {"format": "csv"})
    _assert_hidden(repr(rows))
    changed = [r for r in _identity_rows(rows) if r["action"] == "update"]
    assert {r["field"] for r in changed} == {"full_name", "phone", "national_id"}
    for row in changed:
        assert (row["old_value"], row["new_value"]) == (IDENTIFIER_HIDDEN, IDENTIFIER_HIDDEN)
        assert (row["user"], row["reason"], row["study_id"]) == ("alice", REASON, "BEN-001")
    # An empty value stays empty: the monitor may know an address was never given.
    created = {r["field"]: r for r in _identity_rows(rows) if r["action"] == "create"}
    assert created["full_name"]["new_value"] == IDENTIFIER_HIDDEN
    assert created["full_name"]["old_value"] == ""
    # Clinical values are not touched.
    assert any(r["field"] == "date_of_birth" and r["new_value"] for r in rows)


def test_other_site_staff_cannot_open_the_trail_or_the_identitys_history(
    client, other_andrologist, identity_edited
):
    client.force_login(other_andrologist)
    assert client.get(reverse("audit:trail"), {"format": "csv"}).status_code == 403
    assert client.get(_history_url(identity_edited)).status_code == 404


def test_staff_of_the_patients_site_see_its_identity_values_on_the_trail_and_not_another_sites(
    client, ben_staff_admin, identity_edited, other_site_identity
):
    rows = _csv(client, ben_staff_admin, reverse("audit:trail"), {"format": "csv"})
    phone = next(r for r in _identity_rows(rows) if r["field"] == "phone")
    assert (phone["old_value"], phone["new_value"]) == (cell("+20 111"), cell(NEW_PHONE))
    assert all(secret in repr(rows) for secret in ("Newname", NEW_NATIONAL_ID))
    other = next(r for r in _identity_rows(rows, "AND-001") if r["field"] == "phone")
    assert other["new_value"] == IDENTIFIER_HIDDEN
    _assert_hidden(repr(rows), AND_SECRETS)
    html = _html(client, ben_staff_admin, reverse("audit:trail"), {"username": "alice"})
    assert NEW_PHONE in html and "Newname" in html


# ---- record history ------------------------------------------------------------------------------


@pytest.mark.parametrize("role_fixture", ["monitor", "admin_user"])
def test_the_identitys_history_hides_its_values(client, request, role_fixture, identity_edited):
    html = _html(client, request.getfixturevalue(role_fixture), _history_url(identity_edited))
    _assert_hidden(html)
    assert "<code>phone</code>" in html and REASON in html


def test_the_identitys_history_shows_its_values_to_staff_of_its_site(
    client, andrologist, identity_edited
):
    html = _html(client, andrologist, _history_url(identity_edited))
    assert NEW_PHONE in html and NEW_NAME in html and "29001011234567" in html
    assert IDENTIFIER_HIDDEN not in html


# ---- audit review --------------------------------------------------------------------------------


@pytest.fixture
def edited_after_casebook_signature(rf, consented_patient, screening_visit, andrologist):
    save_crf("examination", screening_visit, andrologist)
    _sign(rf, andrologist, consented_patient, None)
    services.identity_update(
        identity=consented_patient.identity,
        data={"phone": NEW_PHONE},
        user=andrologist,
        reason=REASON,
    )
    return consented_patient


@pytest.mark.parametrize("role_fixture", ["monitor", "admin_user"])
def test_the_review_of_changes_after_a_signature_hides_identity_values(
    client, request, role_fixture, edited_after_casebook_signature
):
    user = request.getfixturevalue(role_fixture)
    html = _html(client, user, reverse("monitoring:audit-review"), WIDE_PERIOD)
    assert "<code>phone</code>" in html
    _assert_hidden(html, (NEW_PHONE, "+20 111"))
    params = {**WIDE_PERIOD, "format": "csv", "section": "after-signature"}
    rows = _csv(client, user, reverse("monitoring:audit-review"), params)
    phone = next(r for r in rows if r["field"] == "phone")
    assert (phone["old_value"], phone["new_value"], phone["reason"]) == (
        IDENTIFIER_HIDDEN,
        IDENTIFIER_HIDDEN,
        REASON,
    )


def test_the_review_shows_identity_values_to_staff_of_the_patients_site(
    client, ben_staff_admin, edited_after_casebook_signature
):
    params = {**WIDE_PERIOD, "format": "csv", "section": "after-signature"}
    rows = _csv(client, ben_staff_admin, reverse("monitoring:audit-review"), params)
    phone = next(r for r in rows if r["field"] == "phone")
    assert (phone["old_value"], phone["new_value"]) == (cell("+20 111"), cell(NEW_PHONE))


# ---- Django admin --------------------------------------------------------------------------------


def test_the_admins_read_only_trail_hides_identity_values(client, admin_user, identity_edited):
    html = _html(
        client, admin_user, reverse("admin:audit_auditentry_changelist"), {"q": "identity"}
    )
    _assert_hidden(html)
    assert "phone" in html and REASON in html
    entry = AuditEntry.objects.get(field_name="phone", action="update")
    detail = _html(client, admin_user, reverse("admin:audit_auditentry_change", args=[entry.pk]))
    _assert_hidden(detail, (NEW_PHONE, "+20 111"))
    assert REASON in detail


def test_the_admins_trail_shows_identity_values_to_staff_of_the_patients_site(
    client, ben_staff_admin, identity_edited, other_site_identity
):
    changelist = reverse("admin:audit_auditentry_changelist")
    html = _html(client, ben_staff_admin, changelist, {"q": "identity"})
    assert NEW_PHONE in html and "Newname" in html
    _assert_hidden(html, AND_SECRETS)
    entry = AuditEntry.objects.get(field_name="phone", action="update", patient=identity_edited)
    detail = _html(
        client, ben_staff_admin, reverse("admin:audit_auditentry_change", args=[entry.pk])
    )
    assert NEW_PHONE in detail


# ---- changes made in raw SQL (no patient on the row) ---------------------------------------------


def _sql_phone_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["user"].startswith("database:") and r["field"] == "phone"]


@pytest.mark.postgres
def test_an_identity_changed_in_raw_sql_is_hidden_on_every_surface_an_admin_reads(
    client, admin_user, sql_edited
):
    rows = _csv(client, admin_user, reverse("audit:trail"), {"format": "csv"})
    assert len(_sql_phone_rows(rows)) == 2
    for row in _sql_phone_rows(rows):
        assert row["study_id"] == ""  # the trigger does not know the patient
        assert (row["old_value"], row["new_value"]) == (IDENTIFIER_HIDDEN, IDENTIFIER_HIDDEN)
    _assert_hidden(repr(rows), (*BEN_SECRETS, SQL_PHONE, *AND_SECRETS))
    database_user = _sql_phone_rows(rows)[0]["user"]
    html = _html(client, admin_user, reverse("audit:trail"), {"username": database_user})
    _assert_hidden(html, (SQL_PHONE, NEW_PHONE))
    review = _html(client, admin_user, reverse("monitoring:audit-review"), WIDE_PERIOD)
    assert 'data-testid="outside-application-alert"' in review
    _assert_hidden(review, (SQL_PHONE, NEW_PHONE))
    params = {**WIDE_PERIOD, "format": "csv", "section": "outside-application"}
    outside = _csv(client, admin_user, reverse("monitoring:audit-review"), params)
    phones = [r for r in outside if r["field"] == "phone"]
    assert {(r["old"], r["new"]) for r in phones} == {(IDENTIFIER_HIDDEN, IDENTIFIER_HIDDEN)}
    admin_html = _html(
        client, admin_user, reverse("admin:audit_auditentry_changelist"), {"q": "database:"}
    )
    _assert_hidden(admin_html, (SQL_PHONE, NEW_PHONE))
    entry = AuditEntry.objects.filter(user_name__startswith="database:", field_name="phone").first()
    detail = _html(client, admin_user, reverse("admin:audit_auditentry_change", args=[entry.pk]))
    _assert_hidden(detail, (SQL_PHONE, NEW_PHONE))


@pytest.mark.postgres
def test_an_identity_changed_in_raw_sql_is_hidden_in_its_history_from_a_monitor(
    client, monitor, sql_edited
):
    html = _html(client, monitor, _history_url(sql_edited))
    assert "database:" in html  # the row is there...
    _assert_hidden(html, (SQL_PHONE, NEW_PHONE))  # ...without its values


@pytest.mark.postgres
def test_staff_of_the_site_see_an_identity_changed_in_raw_sql_through_the_identity_record(
    client, andrologist, ben_staff_admin, sql_edited
):
    assert SQL_PHONE in _html(client, andrologist, _history_url(sql_edited))
    rows = _csv(client, ben_staff_admin, reverse("audit:trail"), {"format": "csv"})
    values = {(r["old_value"], r["new_value"]) for r in _sql_phone_rows(rows)}
    # BEN's row resolved to BEN through the identity record; AND's stays hidden.
    assert values == {(cell(NEW_PHONE), cell(SQL_PHONE)), (IDENTIFIER_HIDDEN, IDENTIFIER_HIDDEN)}
    params = {**WIDE_PERIOD, "format": "csv", "section": "outside-application"}
    outside = _csv(client, ben_staff_admin, reverse("monitoring:audit-review"), params)
    assert (cell(NEW_PHONE), cell(SQL_PHONE)) in {(r["old"], r["new"]) for r in outside}


@pytest.mark.postgres
def test_a_consent_scan_name_changed_in_raw_sql_is_hidden_from_the_admin(
    client, admin_user, consented_patient
):
    consent = consented_patient.consents.get()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE patients_consent SET document = %s WHERE id = %s",
            ["consents/BEN/BEN-001/Ahmed_Secretname_consent.pdf", consent.pk],
        )
    rows = _csv(client, admin_user, reverse("audit:trail"), {"format": "csv"})
    document = next(r for r in rows if r["field"] == "document")
    assert document["new_value"] == IDENTIFIER_HIDDEN
    assert "Secretname" not in repr(rows)


# ---- a clinical field marked as an identifier: the ODM export and the casebook PDF ---------------


@pytest.fixture
def fsh_corrected(consented_patient, screening_visit, andrologist):
    """Screening complete, FSH corrected from 22.5 to 24.1 with a reason."""
    complete_screening(screening_visit, andrologist)
    hormones = screening_visit.labs_hormoneprofile_set.get()
    hormones.fsh = Decimal("24.1")
    services.crf_save(record=hormones, user=andrologist, reason="Transcription error, lab report")
    return consented_patient


@pytest.fixture
def fsh_is_an_identifier(monkeypatch):
    """A model opts in by naming its identifier fields; nothing else changes. FSH stands in
    for a future identifier field of a CRF (the fsh_corrected fixture corrects it)."""
    monkeypatch.setattr(HormoneProfile, "identifier_fields", ("fsh",), raising=False)


def _odm(client, user) -> ElementTree.Element:
    client.force_login(user)
    response = client.get(reverse("exports:odm-xml"))
    assert response.status_code == 200
    return ElementTree.fromstring(b"".join(response.streaming_content))


def _fsh_items(root) -> list[ElementTree.Element]:
    return [e for e in root.iter("{http://www.cdisc.org/ns/odm/v1.3}ItemData")
            if e.get("ItemOID") == "IT.HORMONES.FSH"]  # fmt: skip


def test_the_odm_export_hides_a_marked_field_from_a_monitor(
    client, monitor, fsh_is_an_identifier, fsh_corrected
):
    client.force_login(monitor)
    response = client.get(reverse("exports:odm-xml"))
    content = b"".join(response.streaming_content)
    xmlschema.XMLSchema(str(ODM_XSD)).validate(content.decode())
    items = _fsh_items(ElementTree.fromstring(content))
    assert items  # the changes are there, with who, when and why...
    assert all(i.get("Value") is None for i in items)  # ...but no value
    assert b"24.10" not in content and b"22.50" not in content
    assert IDENTIFIER_HIDDEN.encode() in content
    update = next(i for i in items if i.get("TransactionType") == "Update")
    reason = update.find("{http://www.cdisc.org/ns/odm/v1.3}AuditRecord/"
                         "{http://www.cdisc.org/ns/odm/v1.3}ReasonForChange")  # fmt: skip
    assert reason.text == "Transcription error, lab report"


def test_the_odm_export_keeps_a_marked_field_for_staff_of_the_site(
    client, coordinator, fsh_is_an_identifier, fsh_corrected
):
    items = _fsh_items(_odm(client, coordinator))
    assert next(i for i in items if i.get("TransactionType") == "Update").get("Value") == "24.10"


def _casebook_text(user, patient, tmp_path) -> str:
    job, _ = export_services.pdf_job_request(user=user, kind=PdfJob.Kind.CASEBOOK, patient=patient)
    assert export_services.pdf_job_build(job_id=job.pk) == export_services.BuildOutcome.BUILT
    job.refresh_from_db()
    with job.file.open("rb") as handle:
        return pdf_text(handle.read(), tmp_path)


def test_the_casebook_hides_a_marked_field_and_its_corrections_from_a_monitor(
    monitor, coordinator, fsh_is_an_identifier, fsh_corrected, tmp_path
):
    text = _casebook_text(monitor, fsh_corrected, tmp_path)
    assert "Transcription error, lab report" in text  # the correction is listed...
    for value in ("22.5", "24.10"):  # ...without the values
        assert value not in text, value
    assert IDENTIFIER_HIDDEN in text
    staff = _casebook_text(coordinator, fsh_corrected, tmp_path)
    assert "22.5" in staff and "24.10" in staff and IDENTIFIER_HIDDEN not in staff


def test_the_form_and_analysis_csvs_hide_a_marked_field_from_a_monitor_not_from_site_staff(
    client, monitor, coordinator, fsh_is_an_identifier, fsh_corrected
):
    for user, expected in ((monitor, IDENTIFIER_HIDDEN), (coordinator, "24.10")):
        form = _csv(client, user, reverse("exports:form-csv", args=["hormones"]), {})
        assert [(r["study_id"], r["fsh"]) for r in form] == [("BEN-001", expected)]
        assert form[0]["lh"] not in ("", IDENTIFIER_HIDDEN)  # only the marked field
        analysis = _csv(client, user, reverse("exports:analysis-csv"), {})
        fsh = {k: v for k, v in analysis[0].items() if k.startswith("hormones_fsh") and v}
        assert fsh and set(fsh.values()) == {expected}


# ---- no query per row ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_trail_page_and_csv_hide_identifiers_without_a_query_per_row(
    client, ben_staff_admin, sql_edited, site, andrologist, django_assert_max_num_queries
):
    client.force_login(ben_staff_admin)
    trail = reverse("audit:trail")

    def counts() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as page:
            assert client.get(trail).status_code == 200
        with CaptureQueriesContext(connection) as export:
            response = client.get(trail, {"format": "csv"})
            b"".join(response.streaming_content)
        return len(page), len(export)

    few = counts()
    with connection.cursor() as cursor:
        for n in range(8):
            patient = enrol(site, andrologist, name=f"Another Patient{n}")
            cursor.execute(
                "UPDATE patients_patientidentity SET phone = %s WHERE id = %s",
                [f"+20 9{n}", patient.identity.pk],
            )
    assert counts() == few  # 8 more masked rows, 8 more patients: not one more query
    # Session, user, lockout check, roles, count, the rows; then the user's identity sites and
    # one site look-up for the rows without a patient (the session's save adds 3 on the page),
    # and the session's verified second-factor device (OTPMiddleware).
    with django_assert_max_num_queries(15):
        client.get(trail)
    with django_assert_max_num_queries(13):
        b"".join(client.get(trail, {"format": "csv"}).streaming_content)
