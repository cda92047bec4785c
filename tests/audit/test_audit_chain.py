"""The audit trail's hash chains (issue 11, audit/chain.py): every path chains its rows, two
writers never fork a chain, and a row altered, removed, reordered or slipped in with the
triggers off is found by `verify_audit_trail` and the admins' Audit chain page.

Tampering is done as the tables' owner would (ALTER TABLE ... DISABLE TRIGGER USER, the same
power as a superuser's session_replication_role = replica), inside the test's transaction,
which rolls it back: the next test sees the table as it was."""

import contextlib
import io
import threading
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from audit import services as audit_services
from audit.chain import chain_heads, chain_of, verify_audit_trail
from audit.models import AuditChainHead, AuditEntry
from labs.models import HormoneProfile

from ..factories import save_crf
from ..faults import at_once

pg_only = pytest.mark.postgres


def _chain(patient) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(chain=chain_of(patient.pk)).order_by("chain_seq"))


def _assert_linked(rows: list[AuditEntry]) -> None:
    assert [r.chain_seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == ""
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.row_hash
    assert all(len(r.row_hash) == 64 for r in rows)


def _verify() -> tuple[bool, str]:
    """The command's verdict and output."""
    out = io.StringIO()
    try:
        call_command("verify_audit_trail", stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


def _tamper(sql: str, params=()) -> None:
    """As a database superuser would: with the audit table's triggers switched off."""
    with connection.cursor() as cursor:
        # Django's foreign keys are checked at commit; ALTER TABLE wants none pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER USER")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def chained_patient(consented_patient, screening_visit, andrologist):
    """A patient whose chain holds a created form and two corrections."""
    save_crf("hormones", screening_visit, andrologist, fsh=Decimal("22.5"))
    record = HormoneProfile.objects.get(visit=screening_visit)
    for fsh in ("24.1", "24.3"):
        record.fsh = Decimal(fsh)
        audit_services.audited_save(
            record, user=andrologist, patient=consented_patient, reason="Lab report re-read"
        )
    return consented_patient


# ---- every path chains its rows ----------------------------------------------------------------


def test_every_row_the_application_writes_is_chained_to_the_one_before(chained_patient):
    rows = _chain(chained_patient)
    assert len(rows) > 5
    _assert_linked(rows)
    head = AuditChainHead.objects.get(chain=chain_of(chained_patient.pk))
    assert (head.seq, head.row_hash) == (rows[-1].chain_seq, rows[-1].row_hash)
    assert not AuditEntry.objects.filter(chain_seq__isnull=True).exists()
    assert _verify()[0]


def test_bulk_create_cannot_choose_its_own_chain_values(chained_patient, andrologist):
    """The database sets them, whatever the INSERT says: a forged hash is replaced
    (PostgreSQL), or the INSERT refused (SQLite)."""
    before = _chain(chained_patient)
    forged = AuditEntry(
        user=andrologist,
        user_name="alice",
        action=AuditEntry.Action.QUERY,
        content_type_id=before[0].content_type_id,
        object_id=before[0].object_id,
        object_repr="forged",
        patient=chained_patient,
        reason="Ünïcode and a | pipe, 12:34",
        ip_address="2001:db8::1",
        chain="study",
        chain_seq=1,
        prev_hash="0" * 64,
        row_hash="f" * 64,
    )
    if connection.vendor == "sqlite":
        # SQLite's trigger runs after the row is stored (it cannot rewrite NEW): a forged
        # position that is taken is refused by the unique (chain, chain_seq), the chain intact.
        with pytest.raises(IntegrityError), transaction.atomic():
            AuditEntry.objects.bulk_create([forged])
        assert _chain(chained_patient) == before
        assert _verify()[0]
        return
    AuditEntry.objects.bulk_create([forged])
    rows = _chain(chained_patient)
    assert len(rows) == len(before) + 1
    _assert_linked(rows)
    assert rows[-1].row_hash != "f" * 64
    assert _verify()[0]


@pg_only
def test_rows_written_by_the_capture_trigger_are_chained_in_the_study_chain(
    screening_visit, andrologist
):
    exam = save_crf("examination", screening_visit, andrologist)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE patients_examination SET height_cm = 150 WHERE id = %s", [exam.pk])
    captured = list(AuditEntry.objects.filter(user__isnull=True, object_id=exam.pk))
    assert captured and {r.chain for r in captured} == {"study"}
    _assert_linked(list(AuditEntry.objects.filter(chain="study").order_by("chain_seq")))
    assert _verify()[0]


# ---- concurrent writers ------------------------------------------------------------------------


@pg_only
@pytest.mark.django_db(transaction=True)
def test_two_transactions_writing_to_one_chain_at_once_do_not_fork_it(
    consented_patient, screening_visit, andrologist
):
    """Both hold their transaction open after writing, so without the head's lock the second
    would read the same head and link to the same row."""
    save_crf("hormones", screening_visit, andrologist)
    record_id = HormoneProfile.objects.get(visit=screening_visit).pk
    inside = threading.Barrier(2, timeout=10)

    def correct(fsh):
        def run():
            with transaction.atomic():
                record = HormoneProfile.objects.get(pk=record_id)
                record.lh = Decimal(fsh)
                rows = audit_services.audit_record_change(
                    instance=record,
                    before={"lh": ""},
                    user=andrologist,
                    patient=consented_patient,
                    reason=f"Writer {fsh}",
                )
                # Meet the other writer before committing: it is blocked on the chain's head,
                # so the barrier breaks after a second and this one commits first.
                with contextlib.suppress(threading.BrokenBarrierError):
                    inside.wait(timeout=1)
                return len(rows)

        return run

    written = at_once(correct("3.1"), correct("4.2"))
    assert None not in written and written[0] == written[1] > 0
    rows = _chain(consented_patient)
    _assert_linked(rows)
    last = rows[-2 * written[0] :]
    assert {r.reason for r in last} == {"Writer 3.1", "Writer 4.2"}
    # One writer's rows, then the other's: never interleaved.
    assert len({r.reason for r in last[: written[0]]}) == 1
    assert _verify()[0]


# ---- tampering is found ------------------------------------------------------------------------


def test_a_clean_trail_verifies_on_the_command_and_the_page(chained_patient, client, admin_user):
    ok, out = _verify()
    assert ok and "INTACT" in out and "rows/s" in out
    client.force_login(admin_user)
    page = client.get(reverse("audit:chain")).content.decode()
    assert "Intact." in page and "tampered" not in page


@pg_only
def test_a_changed_new_value_is_found_naming_the_row(chained_patient, client, admin_user):
    rows = _chain(chained_patient)
    target = next(r for r in rows if r.new_value == "24.10")
    _tamper("UPDATE audit_auditentry SET new_value = '20.00' WHERE id = %s", [target.pk])
    ok, out = _verify()
    assert not ok
    assert (
        f"{chain_of(chained_patient.pk)}: first broken link at sequence {target.chain_seq} "
        f"(row #{target.pk}): altered content"
    ) in out
    client.force_login(admin_user)
    page = client.get(reverse("audit:chain")).content.decode()
    assert "The audit trail has been tampered with" in page
    assert f"#{target.pk}" in page and "altered content" in page


@pg_only
def test_a_deleted_row_is_found_as_a_gap(chained_patient, client, admin_user):
    rows = _chain(chained_patient)
    gone = rows[3]
    _tamper("DELETE FROM audit_auditentry WHERE id = %s", [gone.pk])
    ok, out = _verify()
    assert not ok
    assert f"first broken link at sequence {gone.chain_seq + 1} (row #{rows[4].pk})" in out
    assert f"missing row(s): sequence {gone.chain_seq} absent" in out
    client.force_login(admin_user)
    page = client.get(reverse("audit:chain")).content.decode()
    assert f"sequence {gone.chain_seq} absent" in page


@pg_only
def test_rows_cut_from_the_end_of_a_chain_are_found_by_its_head(chained_patient):
    rows = _chain(chained_patient)
    _tamper("DELETE FROM audit_auditentry WHERE id = %s", [rows[-1].pk])
    ok, out = _verify()
    assert not ok
    assert f"missing row(s) at the end: the chain's head is sequence {len(rows)}" in out


@pg_only
def test_two_rows_swapped_are_found_as_reordered(chained_patient):
    rows = _chain(chained_patient)
    a, b = rows[2], rows[3]
    _tamper(
        "UPDATE audit_auditentry SET chain_seq = CASE id WHEN %s THEN %s ELSE %s END "
        "WHERE id IN (%s, %s)",
        [a.pk, -1, -2, a.pk, b.pk],
    )
    _tamper("UPDATE audit_auditentry SET chain_seq = %s WHERE id = %s", [a.chain_seq, b.pk])
    _tamper("UPDATE audit_auditentry SET chain_seq = %s WHERE id = %s", [b.chain_seq, a.pk])
    ok, out = _verify()
    assert not ok
    assert (
        f"first broken link at sequence {a.chain_seq} (row #{b.pk}): reordered: it was written "
        f"after the row now at sequence {b.chain_seq}"
    ) in out


@pg_only
def test_a_row_slipped_in_without_a_hash_is_found(chained_patient, client, admin_user):
    _tamper(
        "INSERT INTO audit_auditentry (timestamp, user_name, action, content_type_id, object_id, "
        "object_repr, patient_id, form_code, field_name, old_value, new_value, reason) "
        "SELECT now(), 'alice', 'update', content_type_id, object_id, object_repr, patient_id, "
        "form_code, 'fsh', '24.30', '8.00', 'Backdated' FROM audit_auditentry WHERE id = %s "
        "RETURNING id",
        [_chain(chained_patient)[0].pk],
    )
    slipped = AuditEntry.objects.get(reason="Backdated")
    assert slipped.chain_seq is None
    ok, out = _verify()
    assert not ok
    assert f"no sequence (row #{slipped.pk}): unchained row" in out
    client.force_login(admin_user)
    assert f"#{slipped.pk}" in client.get(reverse("audit:chain")).content.decode()


@pg_only
def test_a_chain_rewritten_to_its_head_is_caught_by_the_casebooks_anchor(chained_patient):
    """The limit of an unkeyed chain: recomputing every hash from the altered row on hides the
    change from the walk, but not from a head printed before (a casebook's)."""
    printed = chain_heads(patient_ids=[chained_patient.pk])[0]
    rows = _chain(chained_patient)
    _tamper("UPDATE audit_auditentry SET new_value = '20.00' WHERE id = %s", [rows[2].pk])
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER USER")
        cursor.execute("ALTER TABLE audit_chainhead DISABLE TRIGGER USER")
        previous = rows[1].row_hash
        for row in rows[2:]:
            cursor.execute(
                "UPDATE audit_auditentry e SET prev_hash = %s WHERE id = %s", [previous, row.pk]
            )
            cursor.execute(
                "UPDATE audit_auditentry e SET row_hash = edc_audit_row_hash(e) WHERE id = %s "
                "RETURNING row_hash",
                [row.pk],
            )
            previous = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE audit_chainhead SET row_hash = %s WHERE chain = %s", [previous, printed.chain]
        )
        cursor.execute("ALTER TABLE audit_chainhead ENABLE TRIGGER USER")
        cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER USER")
    assert verify_audit_trail().intact  # the walk alone is fooled
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit_trail", "--anchor", printed.anchor, stdout=out)
    assert f"{printed.chain}: first broken link at sequence {printed.sequence}" in out.getvalue()
    assert "rewritten: its hash is" in out.getvalue()


@pg_only
def test_the_chain_head_cannot_be_moved_by_hand(chained_patient):
    from django.db.utils import DatabaseError

    with (
        pytest.raises(DatabaseError, match="kept by the audit trail"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_chainhead SET seq = seq - 1")


def test_the_audit_chain_page_is_for_admins_only(client, monitor, andrologist):
    for user in (monitor, andrologist):
        client.force_login(user)
        assert client.get(reverse("audit:chain")).status_code == 403


def test_an_anchor_typed_wrong_gets_a_message_not_an_error(client, admin_user, db):
    client.force_login(admin_user)
    response = client.get(reverse("audit:chain"), {"anchors": "patient:1#x"})
    assert response.status_code == 200
    assert "an anchor reads CHAIN#SEQUENCE:HASH" in response.content.decode()


# ---- the casebook ties the paper to the trail --------------------------------------------------


def test_the_casebook_prints_the_chain_head_it_was_built_from(
    chained_patient, coordinator, tmp_path
):
    from ..exports.conftest import pdf_text
    from ..exports.test_pdf_content import _pdf

    last = _chain(chained_patient)[-1]
    text = pdf_text(_pdf(chained_patient, coordinator), tmp_path)
    anchor = f"{chain_of(chained_patient.pk)}#{last.chain_seq}:{last.row_hash[:16]}"
    assert f"entry {last.chain_seq}, SHA-256 {last.row_hash[:16]}" in text
    assert anchor in text
    out = io.StringIO()
    call_command("verify_audit_trail", "--anchor", anchor, stdout=out)
    assert "INTACT" in out.getvalue()
