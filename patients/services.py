"""Writes to the patient record. Every clinical write goes through here: consent gating,
date rules, validation and the audit trail live in one place, whatever calls them."""

from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from audit.concurrency import entered_meanwhile, lock_stored, merge_concurrent_edit
from audit.models import AuditEntry
from audit.services import audited_save
from core import crf, guards
from trial.models import ConsentVersion, StudySite, VisitDefinition

from .models import Consent, CrfRecord, Patient, PatientIdentity, PatientStatus, Visit
from .selectors import (
    ConsentStatus,
    computed_status,
    consent_status,
    expected_repeat,
    status_affected_by,
    status_drift,
)

MIN_AGE, MAX_AGE = 18, 70


# ---- enrolment -------------------------------------------------------------------------------


@transaction.atomic
def patient_enrol(
    *,
    site: StudySite,
    date_of_birth: date,
    enrolment_date: date,
    full_name: str,
    phone: str = "",
    national_id: str = "",
    address: str = "",
    user,
) -> Patient:
    """Create a patient with the next study id of the site (`BEN-001`, never reused)."""
    # Lock the site row: two enrolments at once cannot take the same number.
    StudySite.objects.select_for_update().get(pk=site.pk)
    last = Patient.objects.filter(site=site).aggregate(n=Max("number"))["n"] or 0
    number = last + 1
    patient = Patient(
        site=site,
        number=number,
        study_id=f"{site.code}-{number:03d}",
        date_of_birth=date_of_birth,
        enrolment_date=enrolment_date,
    )
    errors = {}
    if enrolment_date > timezone.localdate():
        errors["enrolment_date"] = "The enrolment date cannot be in the future."
    age = patient.age_at_enrolment
    if not MIN_AGE <= age <= MAX_AGE:
        errors["date_of_birth"] = (
            f"Age at enrolment would be {age}: it must be between {MIN_AGE} and {MAX_AGE}."
        )
    if errors:
        raise ValidationError(errors)
    patient.full_clean()
    audited_save(patient, user=user, patient=patient)
    identity = PatientIdentity(
        patient=patient,
        full_name=full_name,
        phone=phone,
        national_id=national_id,
        address=address,
    )
    identity.full_clean()
    audited_save(identity, user=user, patient=patient)
    visits_create_initial(patient=patient, user=user)
    patient_status_refresh(patient=patient)
    return patient


def visits_create_initial(*, patient: Patient, user) -> list[Visit]:
    """Screening and procedure-day visits exist from enrolment; dates come later."""
    created = []
    for definition in patient.site.protocol.visits.filter(
        kind__in=[VisitDefinition.Kind.SCREENING, VisitDefinition.Kind.PROCEDURE]
    ):
        if Visit.objects.filter(patient=patient, definition=definition, sequence=1).exists():
            continue
        visit = Visit(patient=patient, definition=definition, sequence=1)
        audited_save(visit, user=user, patient=patient)
        created.append(visit)
    return created


def visit_anchor(*, visit: Visit, anchor_date: date, user) -> Visit:
    """Snapshot target date and window from the anchor (consent or procedure date)."""
    d = visit.definition
    if d.target_day is None:
        return visit
    visit.target_date = anchor_date + timedelta(days=d.target_day)
    visit.window_start = visit.target_date - timedelta(days=d.window_before)
    visit.window_end = visit.target_date + timedelta(days=d.window_after)
    audited_save(visit, user=user, patient=visit.patient)
    return visit


@transaction.atomic
def identity_update(
    *,
    identity: PatientIdentity,
    data: dict,
    user,
    reason: str,
    loaded_version: int | None = None,
) -> PatientIdentity:
    """`loaded_version`: as crf_save (audit.concurrency)."""
    if not reason.strip():
        raise ValidationError({"reason_for_change": "Give the reason for this change."})
    for key, value in data.items():
        setattr(identity, key, value)
    identity.changes_meanwhile = merge_concurrent_edit(
        record=identity, loaded_version=loaded_version
    )
    identity.full_clean()
    audited_save(identity, user=user, patient=identity.patient, reason=reason)
    return identity


# ---- consent ---------------------------------------------------------------------------------


@transaction.atomic
def consent_record(
    *,
    patient: Patient,
    consent_version: ConsentVersion,
    signed_at: datetime,
    obtained_by,
    witness_name: str = "",
    patient_copy_given: bool = False,
    document=None,
    user,
) -> Consent:
    status = consent_status(patient=patient)
    if status.state == "withdrawn":
        raise ValidationError(status.message)
    errors = {}
    if signed_at > timezone.now():
        errors["signed_at"] = "The signing date and time cannot be in the future."
    elif timezone.localtime(signed_at).date() < consent_version.effective_date:
        errors["signed_at"] = (
            f"Consent version {consent_version.version} only took effect on "
            f"{consent_version.effective_date:%d %b %Y}."
        )
    if consent_version.protocol_id != patient.site.protocol_id:
        errors["consent_version"] = "This consent version belongs to another protocol."
    if patient.consents.filter(consent_version=consent_version).exists():
        errors["consent_version"] = f"The patient already signed version {consent_version.version}."
    if errors:
        raise ValidationError(errors)
    consent = Consent(
        patient=patient,
        consent_version=consent_version,
        signed_at=signed_at,
        obtained_by=obtained_by,
        witness_name=witness_name,
        patient_copy_given=patient_copy_given,
    )
    if document:
        consent.document = document
    consent.full_clean()
    try:
        audited_save(consent, user=user, patient=patient)
    except IntegrityError:  # the same version recorded by another request a moment earlier
        raise ValidationError(
            {"consent_version": f"The patient already signed version {consent_version.version}."}
        ) from None
    if status.state == "none":
        # The first consent anchors the screening window.
        for visit in patient.visits.filter(definition__anchor=VisitDefinition.Anchor.CONSENT):
            visit_anchor(visit=visit, anchor_date=consent.signed_on, user=user)
        patient_status_refresh(patient=patient)  # awaiting consent -> screening or later
    return consent


@transaction.atomic
def consent_withdraw(*, consent: Consent, withdrawn_on: date, reason: str, user) -> Consent:
    errors = {}
    # As it is now, locked: a second withdrawal from another page (or a double click) waits
    # for the first and is refused, never recorded twice.
    Consent.objects.select_for_update().filter(pk=consent.pk).first()
    consent.refresh_from_db(fields=["withdrawn_on", "withdrawal_reason"])
    if consent.withdrawn_on:
        raise ValidationError("This consent is already withdrawn.")
    if not reason.strip():
        errors["withdrawal_reason"] = "Give the reason the patient withdrew."
    if withdrawn_on > timezone.localdate():
        errors["withdrawn_on"] = "The withdrawal date cannot be in the future."
    elif withdrawn_on < consent.signed_on:
        errors["withdrawn_on"] = "The withdrawal date cannot precede the consent."
    if errors:
        raise ValidationError(errors)
    consent.withdrawn_on = withdrawn_on
    consent.withdrawal_reason = reason
    audited_save(
        consent,
        user=user,
        patient=consent.patient,
        reason=reason,
        action=AuditEntry.Action.WITHDRAW,
    )
    patient_status_refresh(patient=consent.patient)
    return consent


# ---- CRFs ------------------------------------------------------------------------------------


def ensure_data_entry_allowed(*, patient: Patient, after_withdrawal: bool = False):
    """Clinical data needs a current, non-withdrawn consent. `after_withdrawal`: forms that
    close a withdrawn patient's record (end of study) are still accepted then. Returns the
    consent status (callers reuse it). The rule is ConsentStatus.allows_entry (the CRF page's
    too)."""
    status = consent_status(patient=patient)
    if status.allows_entry(after_withdrawal=after_withdrawal):
        return status
    raise ValidationError(status.message)


# Checked by crf_save itself, so record.full_clean() leaves them out (each would cost a query
# per save): the visit (read and, for a first entry, locked above), the one live record per
# slot (decided under that lock; the database's unique constraint stands behind it), the
# bookkeeping users (the signed-in user) and the record's uuid (made by uuid4; unique index).
_CHECKED_BY_CRF_SAVE = ("visit", "uuid", "created_by", "updated_by")


@transaction.atomic
def crf_save(
    *,
    record: CrfRecord,
    user,
    reason: str = "",
    loaded_version: int | None = None,
    consent: ConsentStatus | None = None,
) -> CrfRecord:
    """Create or change one CRF record: consent gate, slot and date rules, hard limits and
    cross-field rules, then the audit trail (one row per changed field).

    `loaded_version` (audit.concurrency.record_version when the form was loaded): a save
    from an older version keeps what others changed meanwhile, or is refused (EditConflict)
    when the user changed the same field. The changes kept are left on
    `record.changes_meanwhile` for the page to tell the user.

    `consent`: the patient's consent status read in this same transaction (the CRF page's
    slot reads it to show the form), so it is not read twice; it is read here otherwise.

    Statements (PostgreSQL, inside a request): SAVEPOINT; the consent (2, unless given);
    a first entry: the visit locked, the slot's live record; a correction: the record locked,
    the trail since `loaded_version`; each write guard's (core.guards); the announcement
    for the capture trigger, the INSERT or UPDATE, the audit rows' bulk INSERT; the on_saved
    hooks'; RELEASE. Pinned by tests/audit/test_save_cost.py."""
    visit = record.visit
    patient = visit.patient
    definition = crf.get(record.crf_code)
    if consent is None or not consent.allows_entry(
        after_withdrawal=definition.allowed_after_withdrawal
    ):
        consent = ensure_data_entry_allowed(
            patient=patient, after_withdrawal=definition.allowed_after_withdrawal
        )
    status = consent
    repeat = expected_repeat(visit=visit, code=record.crf_code)
    if not repeat:
        raise ValidationError(f"{record.crf_title} is not part of visit {visit.label}.")
    if not 1 <= record.sequence <= repeat:
        raise ValidationError(f"Visit {visit.label} expects {repeat} {record.crf_title} form(s).")
    is_new = record.pk is None
    stored = None
    if is_new:
        # Lock the visit: two first entries of one slot are decided one after the other, and
        # the second is told, never a duplicate or a database error.
        Visit.objects.select_for_update().filter(pk=visit.pk).first()
        existing = (
            type(record)
            .objects.filter(visit=visit, sequence=record.sequence, voided_at__isnull=True)
            .first()
        )
        if existing is not None:
            raise entered_meanwhile(existing=existing)
        record.changes_meanwhile = []
    else:
        if not reason.strip():
            raise ValidationError(
                {"reason_for_change": "Give the reason for changing data already saved."}
            )
        # The row locked once: the concurrency check and the trail's "before" read it.
        stored = lock_stored(record)
        record.changes_meanwhile = merge_concurrent_edit(
            record=record, loaded_version=loaded_version, stored=stored
        )
    # Other apps' rules on writes (e.g. a signed visit is locked): core.guards.
    guards.check_write(record=record)
    if (
        not definition.may_precede_consent
        and record.assessment_date
        and status.first_signed_on
        and record.assessment_date < status.first_signed_on
    ):
        raise ValidationError(
            {
                "assessment_date": f"The date ({record.assessment_date:%d %b %Y}) cannot "
                f"precede the patient's consent ({status.first_signed_on:%d %b %Y})."
            }
        )
    if record.assessment_date and record.assessment_date > timezone.localdate():
        raise ValidationError({"assessment_date": "The date cannot be in the future."})
    record.full_clean(exclude=_CHECKED_BY_CRF_SAVE)
    if definition.cross_form_check is not None:
        definition.cross_form_check(record=record)
    audited_save(record, user=user, patient=patient, reason=reason, stored=stored)
    crf.saved(record=record, user=user, created=is_new)
    patient_status_refresh(patient=patient, code=record.crf_code)
    return record


@transaction.atomic
def crf_void(*, record: CrfRecord, user, reason: str) -> CrfRecord:
    """Take a form entered by mistake out of the record. It stays in the database and in the
    audit trail; its slot can be entered again."""
    if record.voided_at is not None:
        raise ValidationError("This form is already voided.")
    if not reason.strip():
        raise ValidationError({"void_reason": "Give the reason for voiding this form."})
    ensure_data_entry_allowed(patient=record.visit.patient)
    guards.check_write(record=record)
    record.voided_at = timezone.now()
    record.void_reason = reason
    audited_save(
        record,
        user=user,
        patient=record.visit.patient,
        reason=reason,
        action=AuditEntry.Action.VOID,
    )
    patient_status_refresh(patient=record.visit.patient, code=record.crf_code)
    return record


# ---- the stored stage and flags (PatientStatus) ----------------------------------------------


def patient_status_refresh(*, patient: Patient, code: str | None = None) -> None:
    """Store the patient's stage and flags as the records now say, in the caller's
    transaction (every service that can change them calls it last). `code`: the CRF just
    written; a form that decides neither (patients.selectors.status_affected_by) costs
    nothing. Otherwise two statements when nothing changed (most edits), three when it did:

    1. lock the patient's status row: a concurrent write of the same patient waits here, and
       computes after this transaction commits, so it sees this one's records (READ
       COMMITTED: each statement sees what committed before it);
    2. compute with the one definition of the rules (selectors.computed_status);
    3. store it, if it differs (an upsert: a patient without a row gets one)."""
    if code is not None and not status_affected_by(code):
        return
    stored = (
        PatientStatus.objects.select_for_update()
        .filter(patient_id=patient.pk)
        .values_list("stage", "has_flags")
        .first()
    )
    _, site_id, stage, has_flags = computed_status(Patient.objects.filter(pk=patient.pk)).get()
    if stored == (stage, has_flags):
        return
    if stored is None:
        PatientStatus.objects.bulk_create(
            [
                PatientStatus(
                    patient_id=patient.pk, site_id=site_id, stage=stage, has_flags=has_flags
                )
            ],
            update_conflicts=True,
            unique_fields=["patient"],
            update_fields=["site", "stage", "has_flags"],
        )
    else:
        PatientStatus.objects.filter(patient_id=patient.pk).update(stage=stage, has_flags=has_flags)


def patient_status_rebuild() -> int:
    """Every patient's row computed again in one INSERT ... SELECT (the migration's backfill,
    `manage.py patient_status --rebuild`): set-based, no row goes through Python. Returns the
    number of rows."""
    sql, params = computed_status(Patient.objects.all()).query.sql_with_params()
    table = connection.ops.quote_name(PatientStatus._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
        cursor.execute(f"INSERT INTO {table} (patient_id, site_id, stage, has_flags) {sql}", params)
        return cursor.rowcount


@transaction.atomic
def patient_status_repair() -> list[tuple]:
    """Rewrite the rows that drifted from the records (selectors.status_drift) and return
    that drift, as found before the repair."""
    drift = status_drift()
    PatientStatus.objects.bulk_create(
        [
            PatientStatus(patient_id=pk, site_id=site_id, stage=stage, has_flags=flags)
            for pk, site_id, _, (stage, flags) in drift
        ],
        update_conflicts=True,
        unique_fields=["patient"],
        update_fields=["site", "stage", "has_flags"],
    )
    return drift
