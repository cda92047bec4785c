"""Writes of the monitoring workflow: queries, signatures, unlocks. Each is audited."""

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from audit.models import AuditEntry, AuthEvent
from audit.services import app_write, audit_record_change, audited_save, auth_event_log
from core import crf
from patients.models import CrfRecord, Patient, Visit
from trial.selectors import sites_for_user

from .models import (
    AccessReview,
    AuditTrailReview,
    DataQuery,
    QueryMessage,
    SdvFormStatus,
    SdvRecheck,
    Signature,
    SignatureAgreement,
    SignatureRevocation,
    SourceVerification,
)
from .selectors import (
    SDV_RANK,
    SdvStatus,
    canonical_hash,
    casebook_signature,
    covered_logs,
    covered_records,
    covered_summary,
    locking_signature,
    record_values_hash,
    sdv_status,
    user_access_list,
    visit_is_complete,
)

# ---- locking ---------------------------------------------------------------------------------


def ensure_not_locked(*, record) -> None:
    """Write guard (core.guards): a signed visit or casebook is read-only until unlocked. A
    patient's log (concomitant medications) belongs to no visit: the casebook signature locks it."""
    if isinstance(record, CrfRecord):
        signature = locking_signature(visit=record.visit)
    else:
        signature = casebook_signature(patient=record.patient)
    if signature is not None:
        what = (
            "The casebook"
            if signature.scope == Signature.Scope.CASEBOOK
            else f"Visit {record.visit.label}"
        )
        raise ValidationError(
            f"{what} was signed by {signature.signer_full_name} on "
            f"{signature.signed_at:%d %b %Y %H:%M} UTC and is locked. An administrator must "
            "unlock it, with a reason, before data can be changed."
        )


# ---- queries ---------------------------------------------------------------------------------


def _query_note(*, query: DataQuery, kind: str, text: str, user) -> QueryMessage:
    message = QueryMessage(query=query, kind=kind, text=text, author=user)
    audited_save(
        message,
        user=user,
        patient=query.patient,
        form_code=query.form_code,
        action=AuditEntry.Action.QUERY,
    )
    return message


@transaction.atomic
def query_open(*, record, field_name: str, question: str, user) -> DataQuery:
    if not question.strip():
        raise ValidationError({"question": "Write the question for the site."})
    if field_name and field_name not in {f.name for f in type(record)._meta.concrete_fields}:
        raise ValidationError({"field_name": "This form has no such field."})
    query = DataQuery(
        patient=record.visit.patient,
        visit=record.visit,
        content_type=ContentType.objects.get_for_model(type(record)),
        object_id=record.pk,
        form_code=record.crf_code,
        sequence=record.sequence,
        field_name=field_name,
        question=question,
        raised_by=user,
    )
    audited_save(
        query,
        user=user,
        patient=query.patient,
        form_code=record.crf_code,
        action=AuditEntry.Action.QUERY,
    )
    _query_note(query=query, kind=QueryMessage.Kind.QUESTION, text=question, user=user)
    return query


def _current(query: DataQuery) -> None:
    """Lock the query and read its status as it is now: two users acting on one query (a
    close and an answer from two open pages, a double click) are decided one after the
    other, and the second is refused by the status rules below instead of acting twice."""
    query.status = (
        DataQuery.objects.select_for_update().values_list("status", flat=True).get(pk=query.pk)
    )


def _set_status(*, query: DataQuery, status: str, user, reason: str) -> None:
    query.status = status
    audited_save(
        query,
        user=user,
        patient=query.patient,
        form_code=query.form_code,
        reason=reason,
        action=AuditEntry.Action.QUERY,
    )


@transaction.atomic
def query_answer(*, query: DataQuery, text: str, user) -> DataQuery:
    _current(query)
    if query.status == DataQuery.Status.CLOSED:
        raise ValidationError("This query is closed.")
    if not text.strip():
        raise ValidationError({"text": "Write your answer."})
    _query_note(query=query, kind=QueryMessage.Kind.ANSWER, text=text, user=user)
    _set_status(query=query, status=DataQuery.Status.ANSWERED, user=user, reason=text)
    return query


@transaction.atomic
def query_close(*, query: DataQuery, text: str, user) -> DataQuery:
    _current(query)
    if query.status == DataQuery.Status.CLOSED:
        raise ValidationError("This query is already closed.")
    _query_note(query=query, kind=QueryMessage.Kind.CLOSE, text=text or "Closed.", user=user)
    _set_status(query=query, status=DataQuery.Status.CLOSED, user=user, reason=text or "Closed")
    return query


@transaction.atomic
def query_reopen(*, query: DataQuery, text: str, user) -> DataQuery:
    _current(query)
    if query.status != DataQuery.Status.CLOSED:
        raise ValidationError("Only a closed query can be re-opened.")
    if not text.strip():
        raise ValidationError({"text": "Say why the query is re-opened."})
    _query_note(query=query, kind=QueryMessage.Kind.REOPEN, text=text, user=user)
    _set_status(query=query, status=DataQuery.Status.OPEN, user=user, reason=text)
    return query


# ---- signatures ------------------------------------------------------------------------------


def _verify_credentials(*, request, user, username: str, password: str) -> None:
    """21 CFR 11.200: both components, every time. Re-authentication is for the signed-in
    user only: every failure, a different user name included, counts towards the signed-in
    user's lockout, never towards the account named (which anyone could type)."""
    own = user.get_username()
    if username != own:
        # Never authenticate() with the typed name: axes would count it against that account.
        user_login_failed.send(sender=__name__, credentials={"username": own}, request=request)
        _signature_failed(request=request, user=user, detail=f"user name typed: {username!r}")
        raise ValidationError({"username": f"Sign with your own user name ({own}): not signed."})
    authenticated = authenticate(request, username=own, password=password)
    if authenticated is None or authenticated.pk != user.pk:
        _signature_failed(request=request, user=user, detail="wrong password")
        raise ValidationError({"password": "User name or password is not correct: not signed."})


def _signature_failed(*, request, user, detail: str) -> None:
    auth_event_log(
        kind=AuthEvent.Kind.SIGNATURE_FAILED,
        username=user.get_username(),
        user=user,
        request=request,
        detail=f"signature attempt by {user.get_username()}: {detail}",
    )


def signature_sign(
    *,
    request,
    patient: Patient,
    visit: Visit | None,
    username: str,
    password: str,
    meaning: str,
    user,
    agree: bool = False,
) -> Signature:
    """`agree`: the signer accepts SignatureAgreement.STATEMENT; needed before a first
    signature only."""
    # Outside the signing transaction: a failed attempt stays recorded (log and lockout count).
    _verify_credentials(request=request, user=user, username=username, password=password)
    return _signature_create(patient=patient, visit=visit, meaning=meaning, user=user, agree=agree)


def has_signature_agreement(*, user) -> bool:
    return SignatureAgreement.objects.filter(user=user).exists()


@transaction.atomic
def _signature_create(
    *, patient: Patient, visit: Visit | None, meaning: str, user, agree: bool
) -> Signature:
    # 21 CFR 11.10(j)/11.100: a first signature needs the signer's agreement, recorded once,
    # together with that signature (a refused signature records nothing).
    if not has_signature_agreement(user=user):
        if not agree:
            raise ValidationError(
                {"agree": "Before your first electronic signature, accept the statement above."}
            )
        audited_save(
            SignatureAgreement(user=user, statement=SignatureAgreement.STATEMENT), user=user
        )
    open_queries = DataQuery.objects.filter(patient=patient).exclude(status=DataQuery.Status.CLOSED)
    if visit is not None:
        open_queries = open_queries.filter(visit=visit)
        if not visit_is_complete(visit=visit):
            raise ValidationError("Every form of the visit must be entered before it is signed.")
    if open_queries.exists():
        raise ValidationError(
            f"{open_queries.count()} data query(ies) are still open: they must be closed first."
        )
    scope = Signature.Scope.VISIT if visit is not None else Signature.Scope.CASEBOOK
    existing = Signature.objects.filter(
        patient=patient, visit=visit, scope=scope, revocation__isnull=True
    )
    if existing.exists():
        raise ValidationError("This is already signed.")
    records = covered_records(patient=patient, visit=visit)
    if not records:
        raise ValidationError("There is no data to sign.")
    # A casebook signature vouches for the patient's logs as well as the forms.
    logs = covered_logs(patient=patient) if visit is None else []
    signature = Signature(
        patient=patient,
        visit=visit,
        scope=scope,
        signer=user,
        signer_full_name=user.get_full_name() or user.get_username(),
        meaning=meaning,
        record_hash=canonical_hash(records, logs),
        covered=covered_summary(records, logs),
    )
    signature.full_clean()
    with app_write():
        signature.save()
    audit_record_change(
        instance=signature,
        before=None,
        user=user,
        patient=patient,
        action=AuditEntry.Action.SIGN,
        reason=signature.get_meaning_display(),
    )
    return signature


@transaction.atomic
def signature_unlock(*, signature: Signature, reason: str, user) -> SignatureRevocation:
    """An administrator unlocks signed data for correction: the signature is voided."""
    if hasattr(signature, "revocation"):
        raise ValidationError("This signature is already voided.")
    if not reason.strip():
        raise ValidationError({"reason": "Give the reason for unlocking."})
    revocation = SignatureRevocation(signature=signature, revoked_by=user, reason=reason)
    with app_write():
        revocation.save()
    audit_record_change(
        instance=revocation,
        before=None,
        user=user,
        patient=signature.patient,
        action=AuditEntry.Action.UNLOCK,
        reason=reason,
    )
    return revocation


def record_for_slot(*, visit: Visit, code: str, sequence: int):
    return (
        crf.get(code)
        .model.objects.filter(visit=visit, sequence=sequence, voided_at__isnull=True)
        .first()
    )


# ---- access review ---------------------------------------------------------------------------


@transaction.atomic
def access_review_record(*, user, note: str) -> AccessReview:
    """An administrator records a periodic access review (ICH E6(R3) 4.3.8), keeping the
    access list as it stands now. Audited like any record: it appears in the audit trail."""
    if not note.strip():
        raise ValidationError({"note": "Write what you checked and found."})
    review = AccessReview(
        reviewed_by=user,
        note=note.strip(),
        access_list=[row.as_dict() for row in user_access_list()],
    )
    audited_save(review, user=user)
    return review


# ---- source data verification ----------------------------------------------------------------


def source_verify(*, record, user, note: str = "") -> SourceVerification:
    """A monitor marks one entered form as checked against the source documents. The values'
    hash is kept, so any later change shows the form as changed since verification."""
    if record is None or record.voided_at is not None:
        raise ValidationError("Only an entered form can be source-verified.")
    verification = SourceVerification(
        patient=record.visit.patient,
        visit=record.visit,
        form_code=record.crf_code,
        sequence=record.sequence,
        record_id=record.pk,
        record_hash=record_values_hash(record),
        verified_by=user,
        note=note.strip(),
    )
    audited_save(
        verification,
        user=user,
        patient=verification.patient,
        form_code=record.crf_code,
        reason=note.strip(),
    )
    return verification


# ---- audit-trail review ----------------------------------------------------------------------


def audit_trail_review_record(*, user, review, note: str) -> AuditTrailReview:
    """Record that the audit review page (`review`: monitoring.audit_review.AuditReview) was
    gone through for its site and period, with what it found then and the reviewer's note."""
    if not note.strip():
        raise ValidationError({"note": "Write what you checked, found and did."})
    record = AuditTrailReview(
        reviewed_by=user,
        site_code=review.site_code,
        sites_covered=[review.site_code]
        if review.site_code
        else [site.code for site in sites_for_user(user=user)],
        date_from=review.date_from,
        date_to=review.date_to,
        findings=review.findings(),
        note=note.strip(),
    )
    audited_save(record, user=user)
    return record


# ---- the stored SDV status (SdvFormStatus): kept in the transaction of each write ------------


def _status_case(*, verified: Q, output=None):
    """CASE over a stored row: pending without a verification, verified when `verified`
    holds, else changed; as the status text, or as its rank (`output` "rank")."""

    def value(status):
        return Value(SDV_RANK[status]) if output == "rank" else Value(status)

    return Case(
        When(verification__isnull=True, then=value(SdvStatus.PENDING)),
        When(verified, then=value(SdvStatus.VERIFIED)),
        default=value(SdvStatus.CHANGED),
    )


def sdv_form_saved(sender, instance, created: bool = False, raw: bool = False, **kwargs):
    """post_save of every CRF model (connected in MonitoringConfig.ready), inside the save's
    transaction: a void takes the form off the worklist (one DELETE); a change compares the
    values' hash with the verified one in the database (one UPDATE: equal values stay
    verified, others are changed since verification); a new form gets its row (two
    statements: its slot's newest verification, the INSERT)."""
    if raw or not isinstance(instance, CrfRecord) or not crf.is_registered(instance.crf_code):
        return
    rows = SdvFormStatus.objects.filter(form_code=instance.crf_code, record_id=instance.pk)
    if instance.voided_at is not None:
        rows.delete()
        return
    if not created:
        digest = record_values_hash(instance)
        if rows.update(
            status=_status_case(verified=Q(verified_hash=digest)),
            rank=_status_case(verified=Q(verified_hash=digest), output="rank"),
            assessment_date=instance.assessment_date,
            updated_at=timezone.now(),
        ):
            return
    sdv_rebuild(code=instance.crf_code, records=[instance])


def sdv_rebuild(*, code: str, records: list) -> None:
    """Compute the stored status of `records` (forms of `code`, voided ones too) from scratch:
    the rows of the voided ones deleted, the others written (insert or update)."""
    live = [r for r in records if r.voided_at is None]
    gone = [r.pk for r in records if r.voided_at is not None]
    if gone:
        SdvFormStatus.objects.filter(form_code=code, record_id__in=gone).delete()
    if not live:
        return
    # The visits, with patient and definition (those of a form just saved are loaded).
    visits = {r.visit_id: r.visit for r in live if _visit_loaded(r)}
    missing = {r.visit_id for r in live} - set(visits)
    if missing:
        visits.update(Visit.objects.select_related("patient", "definition").in_bulk(missing))
    latest: dict[tuple[int, int], SourceVerification] = {}
    for v in SourceVerification.objects.filter(
        visit_id__in={r.visit_id for r in live}, form_code=code
    ).order_by("verified_at", "id"):
        latest[(v.visit_id, v.sequence)] = v
    now = timezone.now()
    rows = []
    for record in live:
        visit = visits[record.visit_id]
        verification = latest.get((record.visit_id, record.sequence))
        status = sdv_status(record, verification)
        rows.append(
            SdvFormStatus(
                form_code=code,
                record_id=record.pk,
                patient_id=visit.patient_id,
                site_id=visit.patient.site_id,
                visit_id=visit.pk,
                sequence=record.sequence,
                assessment_date=record.assessment_date,
                study_id=visit.patient.study_id,
                definition_order=visit.definition.order,
                status=status,
                rank=SDV_RANK[status],
                verification=verification,
                verified_at=verification.verified_at if verification else None,
                verified_hash=(
                    verification.record_hash
                    if verification and verification.record_id == record.pk
                    else ""
                ),
                updated_at=now,
            )
        )
    SdvFormStatus.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["form_code", "record_id"],
        update_fields=[
            "patient",
            "site",
            "visit",
            "sequence",
            "assessment_date",
            "study_id",
            "definition_order",
            "status",
            "rank",
            "verification",
            "verified_at",
            "verified_hash",
            "updated_at",
        ],
    )


def _visit_loaded(record) -> bool:
    """Whether the form's visit, its patient and definition are already in memory."""
    if not type(record)._meta.get_field("visit").is_cached(record):
        return False
    visit = record.visit
    return Visit._meta.get_field("patient").is_cached(visit) and Visit._meta.get_field(
        "definition"
    ).is_cached(visit)


def sdv_verification_saved(sender, instance, created: bool = False, raw: bool = False, **kw):
    """post_save of SourceVerification: the form of its slot is verified (the record it names)
    or changed (another record of the slot, voided since): one UPDATE."""
    if raw or not created:
        return
    same = Q(record_id=instance.record_id)
    SdvFormStatus.objects.filter(
        visit_id=instance.visit_id, form_code=instance.form_code, sequence=instance.sequence
    ).update(
        verification=instance,
        verified_at=instance.verified_at,
        verified_hash=Case(When(same, then=Value(instance.record_hash)), default=Value("")),
        status=Case(When(same, then=Value(SdvStatus.VERIFIED)), default=Value(SdvStatus.CHANGED)),
        rank=Case(
            When(same, then=Value(SDV_RANK[SdvStatus.VERIFIED])),
            default=Value(SDV_RANK[SdvStatus.CHANGED]),
        ),
        updated_at=timezone.now(),
    )


def sdv_recheck(*, batch: int = 2000) -> int:
    """Compute again the forms queued by the database (SdvRecheck: written outside the
    application): their values hashed in Python. One query when the queue is empty (the usual
    case); a few per form type and batch otherwise. Returns how many were re-checked."""
    done = 0
    while True:
        queued = list(
            SdvRecheck.objects.order_by("id").values_list("id", "form_code", "record_id")[:batch]
        )
        if not queued:
            return done
        with transaction.atomic():
            by_code: dict[str, set[int]] = {}
            for _, code, record_id in queued:
                by_code.setdefault(code, set()).add(record_id)
            for code, ids in sorted(by_code.items()):
                if not crf.is_registered(code):
                    continue
                model = crf.get(code).model
                records = list(model._base_manager.filter(pk__in=ids))
                found = {r.pk for r in records}
                if ids - found:  # no such form (any more): nothing on the worklist
                    SdvFormStatus.objects.filter(form_code=code, record_id__in=ids - found).delete()
                sdv_rebuild(code=code, records=records)
            SdvRecheck.objects.filter(id__in=[pk for pk, _, _ in queued]).delete()
        done += len(queued)
        if len(queued) < batch:
            return done
