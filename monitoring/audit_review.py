"""Audit-trail review (ICH E6(R3) 4.2.3; EMA 2023 guideline on computerised systems §6.2.2):
planned, risk-based reads of the trail for monitors and administrators, beside the search.

Each section is one small selector over the rows the user may see (`visible_entries`, the
audit-trail page's own scoping) in a period. Each runs a fixed number of queries whatever the
size of the trail; the two that read the CRF records themselves add at most one per CRF type.
What is flagged (night hours, weekend days, late-entry days, weak reasons) is in settings.
"""

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Count, Exists, Max, Min, OuterRef, Q, QuerySet, Value
from django.db.models.functions import (
    Cast,
    Concat,
    ExtractHour,
    ExtractIsoWeekDay,
    Length,
    Trim,
    TruncMinute,
)
from django.utils import timezone

from audit.models import AuditEntry
from audit.selectors import (
    hide_identifiers,
    hide_identifiers_in,
    study_configuration_rows,
    visible_entries,
)
from core import crf
from core.identifiers import identity_site_ids
from core.roles import Role, has_role
from patients.models import CrfRecord, Visit

from .models import Signature, SignatureRevocation

A = AuditEntry.Action
# Data entered or changed. Signatures, unlocks and query messages are workflow: unlocks are
# reviewed with the signatures they void, queries on their own page.
DATA_ACTIONS = (A.CREATE, A.UPDATE, A.VOID, A.WITHDRAW, A.DELETE)
DEFAULT_DAYS = 30
# Rows written by the PostgreSQL capture trigger (audit/dbtriggers.py) carry this prefix.
DATABASE_USER_PREFIX = "database:"


def review_timezone() -> ZoneInfo:
    """The sites' local time. StudySite stores no time zone: both sites are in Egypt, on
    settings.TIME_ZONE. A site in another zone would add StudySite.time_zone, read here."""
    return ZoneInfo(settings.TIME_ZONE)


def default_period() -> tuple[date, date]:
    """The last 30 days, today included."""
    today = timezone.localdate()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def review_entries(
    *, user, date_from: date, date_to: date, site_code: str = ""
) -> QuerySet[AuditEntry]:
    """The visible rows of the period (whole local days). A site filter keeps only rows of
    that site's patients. The review is of the clinical data: study configuration changed
    through the application (admin, protocol file) is found on the trail page's "Study
    configuration" filter; changed in SQL, it stays in "changes outside the application"."""
    tz = review_timezone()
    qs = visible_entries(user=user).filter(
        timestamp__gte=datetime.combine(date_from, time.min, tzinfo=tz),
        timestamp__lt=datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=tz),
    )
    qs = qs.exclude(study_configuration_rows() & ~Q(user_name__startswith=DATABASE_USER_PREFIX))
    if site_code:
        qs = qs.filter(patient__site__code=site_code)
    return qs


# ---- 1. changes per user ---------------------------------------------------------------------


@dataclass(frozen=True)
class UserActivity:
    user_name: str
    records_created: int
    fields_changed: int
    records_voided: int
    weak_reasons: int
    last_at: datetime


def changes_per_user(*, entries: QuerySet[AuditEntry]) -> list[UserActivity]:
    """Per user: records created and voided (a save writes one row per field, so records are
    counted, not rows), fields changed, and changes whose reason is too short to justify
    anything ("typo", "."). Every change a user makes needs a reason; only the schedule's own
    updates (visit windows set from the consent or procedure date) have none, so an empty
    reason is not counted as weak. One query."""
    record = Concat(
        Cast("content_type_id", CharField()),
        Value("-"),
        Cast("object_id", CharField()),
        output_field=CharField(),
    )
    weak = Q(
        action=A.UPDATE,
        reason_length__gt=0,
        reason_length__lt=settings.AUDIT_REVIEW_WEAK_REASON_CHARS,
    )
    rows = (
        entries.filter(action__in=(A.CREATE, A.UPDATE, A.VOID))
        .alias(reason_length=Length(Trim("reason")))
        .values("user_name")
        .annotate(
            created=Count(record, distinct=True, filter=Q(action=A.CREATE)),
            changed=Count("id", filter=Q(action=A.UPDATE)),
            voided=Count(record, distinct=True, filter=Q(action=A.VOID)),
            weak=Count("id", filter=weak),
            last=Max("timestamp"),
        )
        .order_by("user_name")
    )
    return [
        UserActivity(r["user_name"], r["created"], r["changed"], r["voided"], r["weak"], r["last"])
        for r in rows
    ]


# ---- 2. changes after a signature ------------------------------------------------------------


@dataclass(frozen=True)
class ChangeAfterSignature:
    entry: AuditEntry
    signature: Signature  # the latest signature the change came after


def record_visits(entries: list[AuditEntry]) -> dict[tuple[int, int], int]:
    """(content type id, object id) -> visit id, for the rows that point to a CRF record or a
    visit. One query per CRF type present."""
    ids: dict[int, set[int]] = defaultdict(set)
    for e in entries:
        ids[e.content_type_id].add(e.object_id)
    visit_type = ContentType.objects.get_for_model(Visit)
    found = {}
    for type_id, pks in ids.items():
        if type_id == visit_type.pk:
            found.update({(type_id, pk): pk for pk in pks})
            continue
        model = ContentType.objects.get_for_id(type_id).model_class()
        if model is not None and issubclass(model, CrfRecord):
            rows = model._base_manager.filter(pk__in=pks).values_list("pk", "visit_id")
            found.update({(type_id, pk): visit_id for pk, visit_id in rows})
    return found


def _covers(signature: Signature, entry: AuditEntry, visits: dict, unlock_type: int) -> bool:
    if entry.action == A.UNLOCK:
        # An unlock belongs to the one signature it voided.
        revocation = getattr(signature, "revocation", None)
        return (
            entry.content_type_id == unlock_type
            and revocation is not None
            and (revocation.pk == entry.object_id)
        )
    if signature.scope == Signature.Scope.CASEBOOK:
        return True
    return visits.get((entry.content_type_id, entry.object_id)) == signature.visit_id


def changes_after_signature(*, user, entries: QuerySet[AuditEntry]) -> list[ChangeAfterSignature]:
    """Data rows written after a signature that covers them, newest first: any row of the
    patient after a casebook signature, a row on a visit's forms after that visit's signature,
    and the unlocks that voided signatures. Whether the signature was later voided is shown,
    not filtered: corrections after an unlock are exactly what a reviewer reads. A change at
    or before the moment of signing is not after it. Three queries plus one per CRF type."""
    signed_earlier = Signature.objects.filter(
        patient_id=OuterRef("patient_id"), signed_at__lt=OuterRef("timestamp")
    )
    candidates = list(
        entries.filter(action__in=(*DATA_ACTIONS, A.UNLOCK))
        .filter(Exists(signed_earlier))
        .select_related("patient__site")
        .order_by("-timestamp", "-id")
    )
    if not candidates:
        return []
    by_patient: dict[int, list[Signature]] = defaultdict(list)
    for signature in (
        Signature.objects.for_user(user)
        .filter(patient_id__in={e.patient_id for e in candidates})
        .select_related("visit__definition", "revocation__revoked_by")
        .order_by("-signed_at", "-id")
    ):
        by_patient[signature.patient_id].append(signature)
    visits = record_visits(candidates)
    unlock_type = ContentType.objects.get_for_model(SignatureRevocation).pk
    found = []
    for entry in candidates:
        signature = next(
            (
                s
                for s in by_patient[entry.patient_id]
                if s.signed_at < entry.timestamp and _covers(s, entry, visits, unlock_type)
            ),
            None,
        )
        if signature is not None:
            found.append(ChangeAfterSignature(entry, signature))
    return found


# ---- 3. out-of-hours entries -----------------------------------------------------------------


@dataclass(frozen=True)
class OutOfHoursEntry:
    """One save (its rows, one per field, grouped by record, user and minute)."""

    at: datetime
    local: datetime
    why: str
    user_name: str
    action: str
    study_id: str
    site_code: str
    form_code: str
    object_repr: str
    reason: str
    fields: int

    @property
    def action_label(self) -> str:
        return A(self.action).label


def _night_q() -> Q:
    start, end = settings.AUDIT_REVIEW_NIGHT_HOURS
    if start > end:  # across midnight: 22 -> 6
        return Q(local_hour__gte=start) | Q(local_hour__lt=end)
    return Q(local_hour__gte=start, local_hour__lt=end)


def _is_night(hour: int) -> bool:
    start, end = settings.AUDIT_REVIEW_NIGHT_HOURS
    return (hour >= start or hour < end) if start > end else start <= hour < end


def out_of_hours_rule() -> str:
    """The rule in words, for the page: "22:00 to 06:00 and Friday, Saturday (Africa/Cairo)"."""
    start, end = settings.AUDIT_REVIEW_NIGHT_HOURS
    days = ", ".join(calendar.day_name[d - 1] for d in settings.AUDIT_REVIEW_WEEKEND_DAYS)
    return f"{start:02d}:00 to {end:02d}:00 and {days} ({review_timezone().key})"


def out_of_hours_entries(*, entries: QuerySet[AuditEntry]) -> list[OutOfHoursEntry]:
    """Data entered or changed at night or on a weekend day, in the site's local time
    (settings.AUDIT_REVIEW_NIGHT_HOURS, AUDIT_REVIEW_WEEKEND_DAYS), newest first. One query."""
    tz = review_timezone()
    weekend = settings.AUDIT_REVIEW_WEEKEND_DAYS
    rows = (
        entries.filter(action__in=DATA_ACTIONS)
        .alias(
            local_hour=ExtractHour("timestamp", tzinfo=tz),
            local_day=ExtractIsoWeekDay("timestamp", tzinfo=tz),
        )
        .filter(_night_q() | Q(local_day__in=weekend))
        .values(
            "user_name",
            "action",
            "content_type_id",
            "object_id",
            "object_repr",
            "form_code",
            "reason",
            "patient__study_id",
            "patient__site__code",
            minute=TruncMinute("timestamp", tzinfo=tz),
        )
        .annotate(at=Min("timestamp"), fields=Count("id"))
        .order_by("-at")
    )
    found = []
    for r in rows:
        local = r["at"].astimezone(tz)
        reasons = []
        if local.isoweekday() in weekend:
            reasons.append(f"weekend ({local:%A})")
        if _is_night(local.hour):
            reasons.append("night")
        found.append(
            OutOfHoursEntry(
                at=r["at"],
                local=local,
                why=", ".join(reasons),
                user_name=r["user_name"],
                action=r["action"],
                study_id=r["patient__study_id"] or "",
                site_code=r["patient__site__code"] or "",
                form_code=r["form_code"],
                object_repr=r["object_repr"],
                reason=r["reason"],
                fields=r["fields"],
            )
        )
    return found


# ---- 4. late entries -------------------------------------------------------------------------


@dataclass(frozen=True)
class LateEntry:
    entered_at: datetime
    entered_on: date
    assessment_date: date
    days_late: int
    user_name: str
    study_id: str
    site_code: str
    form_code: str
    object_repr: str
    voided: bool


def late_entries(*, entries: QuerySet[AuditEntry]) -> list[LateEntry]:
    """CRF records first entered in the period more than AUDIT_REVIEW_LATE_ENTRY_DAYS after
    their assessment date (ALCOA "contemporaneous"), latest first. The date compared is the
    record's date as it stands now: a corrected date is the true one. Voided records count:
    they were entered. Forms that may precede consent (karyotype, AZF, biopsy) transcribe
    earlier reports, so their date is old by nature: not counted. Two queries plus one per
    CRF type entered."""
    tz = review_timezone()
    crf_types = ContentType.objects.get_for_models(
        *(d.model for d in crf.all_definitions() if not d.may_precede_consent)
    )
    created = (
        entries.filter(action=A.CREATE, content_type__in=list(crf_types.values()))
        .values(
            "content_type_id",
            "object_id",
            "user_name",
            "object_repr",
            "form_code",
            "patient__study_id",
            "patient__site__code",
        )
        .annotate(entered_at=Min("timestamp"))
        .order_by()
    )
    created = list(created)
    ids: dict[int, set[int]] = defaultdict(set)
    for r in created:
        ids[r["content_type_id"]].add(r["object_id"])
    models = {ct.pk: model for model, ct in crf_types.items()}
    records = {}
    for type_id, pks in ids.items():
        for pk, on, voided_at in (
            models[type_id]
            ._base_manager.filter(pk__in=pks)
            .values_list("pk", "assessment_date", "voided_at")
        ):
            records[(type_id, pk)] = (on, voided_at is not None)
    found = []
    for r in created:
        on, voided = records.get((r["content_type_id"], r["object_id"]), (None, False))
        if on is None:
            continue
        entered_on = r["entered_at"].astimezone(tz).date()
        days = (entered_on - on).days
        if days > settings.AUDIT_REVIEW_LATE_ENTRY_DAYS:
            found.append(
                LateEntry(
                    entered_at=r["entered_at"],
                    entered_on=entered_on,
                    assessment_date=on,
                    days_late=days,
                    user_name=r["user_name"],
                    study_id=r["patient__study_id"] or "",
                    site_code=r["patient__site__code"] or "",
                    form_code=r["form_code"],
                    object_repr=r["object_repr"],
                    voided=voided,
                )
            )
    return sorted(found, key=lambda e: (e.entered_at, e.object_repr), reverse=True)


# ---- 5. changes outside the application ------------------------------------------------------


def changes_outside_application(*, entries: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
    """Rows the PostgreSQL capture trigger wrote: a change made with QuerySet.update(), raw
    SQL or psql rather than through the audited services. There should be none. They carry no
    patient, so only administrators see them (as on the audit-trail page)."""
    return (
        entries.filter(user_name__startswith=DATABASE_USER_PREFIX)
        .select_related("content_type")
        .order_by("-timestamp", "-id")
    )


# ---- the page --------------------------------------------------------------------------------


@dataclass
class AuditReview:
    """The review of one period and site; each section is read when first used, so a CSV of
    one section runs only its own queries."""

    user: object
    date_from: date
    date_to: date
    site_code: str = ""

    @cached_property
    def entries(self) -> QuerySet[AuditEntry]:
        return review_entries(
            user=self.user,
            date_from=self.date_from,
            date_to=self.date_to,
            site_code=self.site_code,
        )

    @cached_property
    def per_user(self) -> list[UserActivity]:
        return changes_per_user(entries=self.entries)

    @cached_property
    def after_signature(self) -> list[ChangeAfterSignature]:
        found = changes_after_signature(user=self.user, entries=self.entries)
        # Shown with their values (page and CSV): identifiers hidden from whoever may not see.
        hide_identifiers_in(
            [r.entry for r in found], visible_sites=identity_site_ids(user=self.user)
        )
        return found

    @cached_property
    def out_of_hours(self) -> list[OutOfHoursEntry]:
        return out_of_hours_entries(entries=self.entries)

    @cached_property
    def late(self) -> list[LateEntry]:
        return late_entries(entries=self.entries)

    @property
    def sees_database_changes(self) -> bool:
        return has_role(self.user, Role.ADMIN)

    @cached_property
    def outside_application(self) -> QuerySet[AuditEntry]:
        # Not tied to a site (no patient): the site filter does not apply.
        return changes_outside_application(
            entries=review_entries(user=self.user, date_from=self.date_from, date_to=self.date_to)
        )

    def findings(self) -> dict:
        """Each section's count, as the page shows them: what a recorded review keeps."""
        return {
            "users_active": len(self.per_user),
            "changes_after_signature": len(self.after_signature),
            "out_of_hours_entries": len(self.out_of_hours),
            "late_entries": len(self.late),
            "changes_outside_application": (
                self.outside_application.count() if self.sees_database_changes else None
            ),
        }


# The sections as CSV rows (header first), streamed by the review page.
def _utc(value) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def _per_user_csv(review):
    yield [
        "user",
        "records_created",
        "fields_changed",
        "records_voided",
        "changes_with_weak_reason",
        "last_activity_utc",
    ]
    for r in review.per_user:
        yield [
            r.user_name,
            r.records_created,
            r.fields_changed,
            r.records_voided,
            r.weak_reasons,
            _utc(r.last_at),
        ]


def _after_signature_csv(review):
    yield [
        "timestamp_utc",
        "user",
        "action",
        "site",
        "study_id",
        "form",
        "record",
        "field",
        "old_value",
        "new_value",
        "reason",
        "signature_scope",
        "signature_visit",
        "signed_by",
        "signed_at_utc",
        "signature_voided_at_utc",
    ]
    for r in review.after_signature:
        e, s = r.entry, r.signature
        revocation = getattr(s, "revocation", None)
        yield [
            _utc(e.timestamp),
            e.user_name,
            e.action,
            e.patient.site.code,
            e.patient.study_id,
            e.form_code,
            e.object_repr,
            e.field_name,
            e.old_value,
            e.new_value,
            e.reason,
            s.scope,
            s.visit.label if s.visit_id else "",
            s.signer_full_name,
            _utc(s.signed_at),
            _utc(revocation.revoked_at) if revocation else "",
        ]


def _out_of_hours_csv(review):
    yield [
        "timestamp_utc",
        "local_time",
        "why",
        "user",
        "action",
        "site",
        "study_id",
        "form",
        "record",
        "fields",
        "reason",
    ]
    for r in review.out_of_hours:
        yield [
            _utc(r.at),
            r.local.isoformat(),
            r.why,
            r.user_name,
            r.action,
            r.site_code,
            r.study_id,
            r.form_code,
            r.object_repr,
            r.fields,
            r.reason,
        ]


def _late_csv(review):
    yield [
        "entered_at_utc",
        "entered_on_local",
        "assessment_date",
        "days_late",
        "user",
        "site",
        "study_id",
        "form",
        "record",
        "voided",
    ]
    for r in review.late:
        yield [
            _utc(r.entered_at),
            r.entered_on.isoformat(),
            r.assessment_date.isoformat(),
            r.days_late,
            r.user_name,
            r.site_code,
            r.study_id,
            r.form_code,
            r.object_repr,
            "yes" if r.voided else "",
        ]


def _outside_application_csv(review):
    yield ["timestamp_utc", "database_user", "action", "table_row", "field", "old", "new"]
    rows = review.outside_application.iterator(chunk_size=2000)
    for e in hide_identifiers(rows, user=review.user):
        yield [
            _utc(e.timestamp),
            e.user_name,
            e.action,
            e.object_repr,
            e.field_name,
            e.old_value,
            e.new_value,
        ]


# Each section's CSV rows, the header first (the page's CSV buttons).
REVIEW_CSV = {
    "per-user": _per_user_csv,
    "after-signature": _after_signature_csv,
    "out-of-hours": _out_of_hours_csv,
    "late": _late_csv,
    "outside-application": _outside_application_csv,
}
