"""What one CRF save costs in SQL statements (issue 12: a save in at most 12), pinned so that a
query cannot creep back into the audited write, and the checks the cuts must not lose: the
capture trigger still records what the application does not, the concurrency check still
sees a save it waited for, the chain still verifies.

The counts are those of a save inside a request (ATOMIC_REQUESTS): the test's transaction
stands for the request's, so crf_save's own atomic block is a savepoint here, as there."""

import re
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.urls import reverse

from audit.chain import verify_audit_trail
from audit.concurrency import EditConflict, record_version
from audit.models import AuditEntry
from core import crf
from labs.models import HormoneProfile
from patients.models import Visit
from patients.selectors import consent_status
from patients.services import crf_save

from ..factories import crf_values, post_data, save_crf


@pytest.fixture(autouse=True)
def _content_types_cached(db):
    # A running process has them cached after its first save; the counts are a warm save's.
    ContentType.objects.get_for_model(HormoneProfile)


def _as_the_page_loads(visit):
    """The visit as the CRF page has it: its definition, patient, site and protocol read."""
    return Visit.objects.select_related("definition", "patient__site__protocol").get(pk=visit.pk)


def _first_entry(visit):
    return HormoneProfile(visit=_as_the_page_loads(visit), sequence=1, **crf_values("hormones"))


def _loaded(record):
    """The record as the CRF page loads it: its visit (with definition) and patient known."""
    fresh = HormoneProfile.objects.get(pk=record.pk)
    fresh.visit = _as_the_page_loads(record.visit)
    return fresh


def _trail(record):
    return AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(HormoneProfile), object_id=record.pk
    )


def _expected(*, postgres: bool, consent_given: bool, new: bool) -> int:
    """SAVEPOINT; consent and current version (2, unless the caller read them); a first
    entry: the visit locked and the slot's live record; a correction: the record locked and
    the trail since the version loaded; the two write guards (end of study, signature lock);
    the capture trigger told (PostgreSQL only); INSERT or UPDATE; the audit rows in one
    INSERT; the stored SDV status (monitoring: a first entry reads its slot's newest
    verification and inserts its row, a correction updates it); RELEASE. The stored patient
    status costs nothing here: hormones decide neither the stage nor the flags
    (tests/patients/test_patient_status.py counts the forms that do)."""
    sdv = 2 if new else 1
    return 1 + (0 if consent_given else 2) + 2 + 2 + (1 if postgres else 0) + 1 + 1 + sdv + 1


@pytest.mark.parametrize("consent_given", [False, True])
def test_a_first_entry_costs_a_fixed_number_of_statements(
    screening_visit, andrologist, is_postgres, django_assert_num_queries, consent_given
):
    record = _first_entry(screening_visit)
    consent = consent_status(patient=screening_visit.patient) if consent_given else None
    with django_assert_num_queries(
        _expected(postgres=is_postgres, consent_given=consent_given, new=True)
    ):
        crf_save(record=record, user=andrologist, consent=consent)
    assert _trail(record).filter(action="create").count() == 6


@pytest.mark.parametrize("consent_given", [False, True])
def test_a_correction_costs_a_fixed_number_of_statements(
    screening_visit, andrologist, is_postgres, django_assert_num_queries, consent_given
):
    saved = save_crf("hormones", screening_visit, andrologist)
    record = _loaded(saved)
    version = record_version(record)
    record.fsh = Decimal("12.0")
    consent = consent_status(patient=screening_visit.patient) if consent_given else None
    with django_assert_num_queries(
        _expected(postgres=is_postgres, consent_given=consent_given, new=False)
    ):
        crf_save(
            record=record,
            user=andrologist,
            reason="Lab re-issued FSH",
            loaded_version=version,
            consent=consent,
        )
    # One audit row, the field that changed, with its old and new values and the reason.
    rows = _trail(record).filter(action="update")
    assert list(rows.values_list("field_name", "old_value", "new_value", "reason")) == [
        ("fsh", "22.50", "12", "Lab re-issued FSH")
    ]


def test_a_save_through_the_page_stays_bounded(
    client, consented_patient, screening_visit, andrologist, django_assert_max_num_queries
):
    """The whole POST (session, user, second factor, lockout check, slot, save, redirect)."""
    client.force_login(andrologist)
    url = reverse(
        "patients:crf-edit", args=[consented_patient.uuid, screening_visit.uuid, "hormones", 1]
    )
    client.get(url)
    with django_assert_max_num_queries(26):
        response = client.post(url, post_data("hormones", loaded_version="0"))
    assert response.status_code == 302
    html = client.get(url).content.decode()
    version = re.search(r'name="loaded_version" value="(\d*)"', html).group(1)
    with django_assert_max_num_queries(26):
        response = client.post(
            url,
            post_data(
                "hormones", fsh="12.0", reason_for_change="Lab re-issued", loaded_version=version
            ),
        )
    assert response.status_code == 302
    assert HormoneProfile.objects.get().fsh == Decimal("12.0")


def test_a_consent_given_that_no_longer_allows_entry_is_read_again(screening_visit, andrologist):
    """A status that refuses is never trusted as is: crf_save reads the consent itself and
    refuses with the message of what it finds."""
    from patients.selectors import ConsentStatus

    refused = ConsentStatus("none", "stale: no consent")
    record = _first_entry(screening_visit)
    crf_save(record=record, user=andrologist, consent=refused)  # the patient did consent
    assert record.pk is not None


def test_a_given_status_does_not_skip_the_other_checks(screening_visit, andrologist):
    """The checks crf_save does itself (a slot taken meanwhile) stand with a given status."""
    consent = consent_status(patient=screening_visit.patient)
    save_crf("hormones", screening_visit, andrologist)
    with pytest.raises(EditConflict):
        crf_save(record=_first_entry(screening_visit), user=andrologist, consent=consent)


@pytest.mark.postgres
def test_the_capture_trigger_skips_the_saved_row_only(screening_visit, andrologist):
    """The announcement is used up by the row it announced: a QuerySet.update() right after,
    in the same transaction, is recorded by the database trigger (no statement resets it)."""
    with transaction.atomic():
        record = save_crf("hormones", screening_visit, andrologist)
        HormoneProfile.objects.filter(pk=record.pk).update(lh=Decimal("5.5"))
    rows = _trail(record)
    assert rows.filter(user=andrologist, action="create").count() == 6
    captured = rows.filter(user__isnull=True)
    assert list(captured.values_list("field_name", "new_value")) == [("lh", "5.50")]
    assert captured.get().user_name.startswith("database:")
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(current_setting('edc.audit_context', true), '')")
        assert cursor.fetchone()[0] == ""


@pytest.mark.postgres
def test_a_save_that_fails_leaves_no_announcement_behind(screening_visit, andrologist, monkeypatch):
    """A save that fails after the announcement, before any row is written, rolls the
    announcement back with crf_save's savepoint: the next raw write is still captured."""
    saved = save_crf("hormones", screening_visit, andrologist)

    def refuse(self, *args, **kwargs):
        raise RuntimeError("refused")

    record = _loaded(saved)
    record.fsh = Decimal("12.0")
    with monkeypatch.context() as m:
        m.setattr(HormoneProfile, "save", refuse)
        with pytest.raises(RuntimeError):
            crf_save(record=record, user=andrologist, reason="Lab re-issued")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE labs_hormoneprofile SET lh = 4.4 WHERE id = %s", [saved.pk])
    captured = _trail(saved).filter(user__isnull=True)
    assert list(captured.values_list("field_name", "new_value")) == [("lh", "4.40")]


def test_the_chain_verifies_after_first_entries_and_corrections(screening_visit, andrologist):
    saved = save_crf("hormones", screening_visit, andrologist)
    for value in ("12.0", "13.5"):
        record = _loaded(saved)
        version = record_version(record)
        record.fsh = Decimal(value)
        crf_save(record=record, user=andrologist, reason="Lab re-issued", loaded_version=version)
    save_crf("examination", screening_visit, andrologist)
    report = verify_audit_trail()
    assert report.intact, report.summary()


def test_a_stale_correction_still_keeps_the_change_made_meanwhile(
    screening_visit, andrologist, coordinator
):
    saved = save_crf("hormones", screening_visit, andrologist)
    mine, theirs = _loaded(saved), _loaded(saved)
    version = record_version(mine)
    theirs.fsh = Decimal("12.0")
    crf_save(record=theirs, user=coordinator, reason="Lab re-issued FSH", loaded_version=version)
    mine.lh = Decimal("7.5")
    crf_save(record=mine, user=andrologist, reason="Typo in LH", loaded_version=version)
    stored = HormoneProfile.objects.get(pk=saved.pk)
    assert (stored.fsh, stored.lh) == (Decimal("12.00"), Decimal("7.50"))
    assert [c.field_name for c in mine.changes_meanwhile] == ["fsh"]
    # The trail's "before" of the second save is the row as stored (FSH 12), not the form's.
    rows = _trail(saved).filter(action="update").order_by("id")
    assert list(rows.values_list("user_name", "field_name", "old_value", "new_value")) == [
        ("carol", "fsh", "22.50", "12"),
        ("alice", "lh", "9.80", "7.50"),
    ]
    assert crf.get("hormones").model is HormoneProfile
