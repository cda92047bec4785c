"""Reads for monitors: what a signature covers and whether it still holds, open queries,
the consent audit; for administrators, the user access list."""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Min, Q, QuerySet, Sum

from audit.models import AuthEvent
from audit.services import snapshot
from core import crf
from patients.models import Patient, Visit
from patients.selectors import PatientRecord, consent_status
from trial.selectors import current_consent_version, sites_for_user

from .models import (
    AccessReview,
    AuditTrailReview,
    DataQuery,
    SdvCount,
    SdvFormStatus,
    Signature,
    SourceVerification,
)

# ---- signatures ------------------------------------------------------------------------------


def covered_records(*, patient: Patient, visit: Visit | None = None) -> list:
    """Live CRF records of one visit, or of the whole casebook; one query per CRF type."""
    definitions = {c for v in patient.site.protocol.visits.all() for c, _ in v.expected_forms}
    records = []
    for code in sorted(c for c in definitions if crf.is_registered(c)):
        qs = crf.get(code).model.objects.filter(visit__patient=patient, voided_at__isnull=True)
        if visit is not None:
            qs = qs.filter(visit=visit)
        records += list(qs.select_related("visit__definition"))
    return sorted(records, key=record_order)


def record_order(record) -> tuple:
    return (record.visit.definition.order, record.visit.sequence, record.crf_code, record.sequence)


def covered_logs(*, patient: Patient) -> list:
    """The patient's logs, which a casebook signature covers too: adverse events and
    concomitant medications, voided entries included (a void is a change of the log)."""
    from followup.models import AdverseEvent, ConcomitantMedication

    return [
        *AdverseEvent.objects.filter(patient=patient).order_by("number"),
        *ConcomitantMedication.objects.filter(patient=patient).order_by("number"),
    ]


def canonical_hash(records: list, logs: list = ()) -> str:
    """SHA-256 of a canonical serialisation of the data (ODM: a signature covers all clinical
    data of the entity at signing time): the forms, and for a casebook the logs."""
    payload = [
        {
            "visit": r.visit.label,
            "form": r.crf_code,
            "sequence": r.sequence,
            "data": snapshot(r, readable=False),
        }
        for r in records
    ]
    payload += [
        {
            "log": entry._meta.label_lower,
            "number": entry.number,
            "data": snapshot(entry, readable=False),
        }
        for entry in logs
    ]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def covered_summary(records: list, logs: list = ()) -> list[list]:
    """What a signature covers: [visit, form, sequence, id] per form, then ["log", model,
    number, id] per log entry."""
    return [[r.visit.label, r.crf_code, r.sequence, r.pk] for r in records] + [
        ["log", entry._meta.label_lower, entry.number, entry.pk] for entry in logs
    ]


def signature_status(signature: Signature, records: list | None = None) -> str:
    """valid | voided (unlocked by an admin) | invalidated (data changed since signing, e.g.
    outside the application). `records`: the patient's live records, if already loaded."""
    if hasattr(signature, "revocation"):
        return "voided"
    if records is None:
        covered = covered_records(patient=signature.patient, visit=signature.visit)
    else:
        covered = sorted(
            (r for r in records if signature.visit_id is None or r.visit_id == signature.visit_id),
            key=record_order,
        )
    logs = covered_logs(patient=signature.patient) if signature.visit_id is None else []
    return "valid" if canonical_hash(covered, logs) == signature.record_hash else "invalidated"


def locking_signature(*, visit: Visit) -> Signature | None:
    """The signature that locks this visit, if any (visit or casebook, not unlocked)."""
    return (
        Signature.objects.filter(
            Q(visit=visit) | Q(scope=Signature.Scope.CASEBOOK, patient_id=visit.patient_id)
        )
        .filter(revocation__isnull=True)
        .select_related("visit")
        .order_by("-signed_at")
        .first()
    )


def casebook_signature(*, patient: Patient) -> Signature | None:
    """The casebook signature of the patient that is not unlocked, if any."""
    return (
        Signature.objects.filter(
            patient=patient, scope=Signature.Scope.CASEBOOK, revocation__isnull=True
        )
        .order_by("-signed_at")
        .first()
    )


def patient_signatures(*, patient: Patient) -> list[Signature]:
    return list(
        patient.signatures.select_related("visit__definition", "revocation").order_by("-signed_at")
    )


# ---- queries ---------------------------------------------------------------------------------


def open_queries_by_slot(*, patient: Patient) -> dict[tuple[int, str, int], int]:
    """(visit id, form code, sequence) -> number of open queries, for the patient matrix."""
    counts: dict[tuple[int, str, int], int] = {}
    for q in DataQuery.objects.filter(patient=patient).exclude(status=DataQuery.Status.CLOSED):
        key = (q.visit_id, q.form_code, q.sequence)
        counts[key] = counts.get(key, 0) + 1
    return counts


def query_list(*, user, status: str = "", site_code: str = "") -> QuerySet[DataQuery]:
    qs = DataQuery.objects.for_user(user).select_related(
        "patient__site", "visit__definition", "raised_by"
    )
    if status == "open":
        qs = qs.exclude(status=DataQuery.Status.CLOSED)
    elif status:
        qs = qs.filter(status=status)
    if site_code:
        qs = qs.filter(patient__site__code=site_code)
    return qs.order_by("-created_at")


def query_counts(*, user) -> dict[str, int]:
    """Open and answered queries at the user's sites: one aggregate query."""
    rows = (
        DataQuery.objects.for_user(user)
        .exclude(status=DataQuery.Status.CLOSED)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
    )
    counts = {DataQuery.Status.OPEN: 0, DataQuery.Status.ANSWERED: 0}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def queries_for_record(*, record) -> list[DataQuery]:
    from django.contrib.contenttypes.models import ContentType

    return list(
        DataQuery.objects.filter(
            content_type=ContentType.objects.get_for_model(type(record)), object_id=record.pk
        )
        .prefetch_related("messages__author")
        .order_by("-created_at")
    )


# ---- consent audit ---------------------------------------------------------------------------


@dataclass
class ConsentAuditRow:
    patient: Patient
    state: str
    version: str
    current_version: str
    signed_at: object
    obtained_by: str
    witness: str
    document_present: bool
    withdrawn_on: date | None
    withdrawal_reason: str
    first_data_date: date | None
    data_before_consent: bool

    @property
    def problems(self) -> list[str]:
        found = []
        if self.state == "none":
            found.append("no consent")
        if self.state == "reconsent_due":
            found.append("re-consent due")
        if self.state != "none" and not self.document_present:
            found.append("document missing")
        if self.data_before_consent:
            found.append("data before consent")
        return found


CONSENT_PROBLEMS = ["no consent", "re-consent due", "document missing", "data before consent"]


def earliest_data_dates(*, patients: QuerySet[Patient]) -> dict[int, date]:
    """Per patient, the earliest date of a CRF that must not precede consent (one query per
    CRF type)."""
    earliest: dict[int, date] = {}
    for definition in crf.all_definitions():
        if definition.may_precede_consent:
            continue
        rows = (
            definition.model.objects.filter(visit__patient__in=patients, voided_at__isnull=True)
            .values("visit__patient_id")
            .annotate(first=Min("assessment_date"))
        )
        for row in rows:
            pid, first = row["visit__patient_id"], row["first"]
            if first and (pid not in earliest or first < earliest[pid]):
                earliest[pid] = first
    return earliest


def consent_audit_patients(*, user, site_code: str = "", problem: str = "") -> QuerySet[Patient]:
    """The consent audit's patients in page order, a problem of CONSENT_PROBLEMS filtered by
    the database (the same rules as ConsentAuditRow.problems over `consent_status`), so the
    page is cut by a paginator whatever the number of patients. The rules are aliases and
    semi-joins, never computed in the SELECT of the page."""
    from django.db.models import Case, Exists, IntegerField, OuterRef, Subquery, When
    from django.utils import timezone

    from patients.models import Consent
    from trial.models import ConsentVersion

    consents = Consent.objects.filter(patient=OuterRef("pk")).order_by()
    current = ConsentVersion.objects.filter(
        protocol=OuterRef("site__protocol"), effective_date__lte=timezone.localdate()
    ).order_by("-effective_date", "-id")
    # The consent the row shows (consent_status): the newest withdrawn one, else the newest.
    shown = consents.order_by(
        Case(When(withdrawn_on__isnull=False, then=0), default=1, output_field=IntegerField()),
        "-signed_at",
    )
    patients = Patient.objects.for_user(user).alias(
        has_consent=Exists(consents),
        withdrawn=Exists(consents.filter(withdrawn_on__isnull=False)),
        current_version_id=Subquery(current.values("pk")[:1]),
        has_current=Exists(consents.filter(consent_version_id=OuterRef("current_version_id"))),
        shown_document=Subquery(shown.values("document")[:1]),
    )
    if site_code:
        patients = patients.filter(site__code=site_code)
    rules = {
        "no consent": lambda: Q(has_consent=False),
        "re-consent due": lambda: Q(
            withdrawn=False,
            has_consent=True,
            current_version_id__isnull=False,
            has_current=False,
        ),
        "document missing": lambda: Q(has_consent=True, shown_document=""),
        "data before consent": lambda: Q(pk__in=_data_before_consent_sql()),
    }
    if problem in rules:
        patients = patients.filter(rules[problem]())
    elif problem:
        patients = patients.none()
    return patients.select_related("site").order_by("site__code", "number")


def _data_before_consent_sql():
    """Ids of the patients with a live CRF (one that must not precede consent) dated before
    their first consent (its local date), or with no consent at all: one pass over the form
    tables, hash-joined (`earliest_data_dates` and `consent_status`' rule, for every patient
    at once). Portable SQL (PostgreSQL and SQLite); the first consent's local date is the
    ORM's TruncDate in the current time zone, as `Consent.signed_on`."""
    from django.db.models.expressions import RawSQL
    from django.db.models.functions import TruncDate
    from django.utils import timezone

    from patients.models import Consent

    parts = [
        f'SELECT visit_id, assessment_date FROM "{d.model._meta.db_table}" '
        "WHERE voided_at IS NULL AND assessment_date IS NOT NULL"
        for d in crf.all_definitions()
        if not d.may_precede_consent
    ] or ["SELECT NULL AS visit_id, NULL AS assessment_date WHERE 1 = 0"]
    # The local date of each patient's first consent: min(signed_on) of consent_status.
    first_consent, params = (
        Consent.objects.order_by()
        .values("patient_id")
        .annotate(first=Min(TruncDate("signed_at", tzinfo=timezone.get_current_timezone())))
        .query.sql_with_params()
    )
    sql = (
        f'SELECT v.patient_id FROM "{Visit._meta.db_table}" v '
        f"JOIN ({' UNION ALL '.join(parts)}) r ON r.visit_id = v.id "
        f"LEFT JOIN ({first_consent}) c ON c.patient_id = v.patient_id "
        "WHERE c.first IS NULL OR r.assessment_date < c.first"
    )
    return RawSQL(sql, list(params))


def consent_audit_before_consent_count(patients: QuerySet[Patient]) -> int:
    """How many of `patients` (consent_audit_patients) have data dated before consent."""
    return patients.filter(pk__in=_data_before_consent_sql()).count()


def consent_audit_page_rows(*, user, patients: list[Patient]) -> list[ConsentAuditRow]:
    """The rows of one page of `consent_audit_patients`: a bounded number of queries."""
    if not patients:
        return []
    return consent_audit_rows(user=user, pks=[p.pk for p in patients])


def consent_audit_rows(
    *, user, site_code: str = "", problem: str = "", pks: list[int] | None = None
) -> list[ConsentAuditRow]:
    """Every patient's row (the CSV), or the rows of the patients `pks` (a page)."""
    patients = (
        Patient.objects.for_user(user)
        .select_related("site__protocol")
        .prefetch_related("consents__consent_version", "consents__obtained_by")
    )
    if site_code:
        patients = patients.filter(site__code=site_code)
    if pks is not None:
        patients = patients.filter(pk__in=pks)
    earliest = earliest_data_dates(patients=patients)
    current_by_protocol = {}
    rows = []
    for patient in patients.order_by("site__code", "number"):
        protocol_id = patient.site.protocol_id
        if protocol_id not in current_by_protocol:
            current_by_protocol[protocol_id] = current_consent_version(
                protocol=patient.site.protocol
            )
        consents = list(patient.consents.all())
        status = consent_status(
            patient=patient, consents=consents, current=current_by_protocol[protocol_id]
        )
        c = status.consent
        first = earliest.get(patient.pk)
        rows.append(
            ConsentAuditRow(
                patient=patient,
                state=status.state,
                version=c.consent_version.version if c else "",
                current_version=status.current_version.version if status.current_version else "",
                signed_at=c.signed_at if c else None,
                obtained_by=(c.obtained_by.get_full_name() or c.obtained_by.username) if c else "",
                witness=c.witness_name if c else "",
                document_present=bool(c and c.document),
                withdrawn_on=c.withdrawn_on if c else None,
                withdrawal_reason=c.withdrawal_reason if c else "",
                first_data_date=first,
                data_before_consent=bool(
                    first and (status.first_signed_on is None or first < status.first_signed_on)
                ),
            )
        )
    if problem:
        rows = [r for r in rows if problem in r.problems]
    return rows


def visit_is_complete(*, visit: Visit) -> bool:
    expected = [(c, n) for c, n in visit.definition.expected_forms if crf.is_registered(c)]
    for code, repeat in expected:
        count = crf.get(code).model.objects.filter(visit=visit, voided_at__isnull=True).count()
        if count < repeat:
            return False
    return True


def annotate_record(*, record: PatientRecord) -> None:
    """Record annotator (patients.hooks) of the patient page: open-query counts, source
    verification and signatures on the matrix, and `record.signatures` [(signature, status)],
    newest first (from data already loaded: three queries in all)."""
    patient = record.patient
    counts = open_queries_by_slot(patient=patient)
    signatures = patient_signatures(patient=patient)
    verifications = latest_verifications(SourceVerification.objects.filter(patient=patient))
    loaded = record.records
    statuses = [(s, signature_status(s, loaded)) for s in signatures]
    for row in record.rows:
        for cell in row.cells:
            if row.visit is not None:
                slot = (row.visit.pk, cell.code, cell.sequence)
                cell.open_queries = counts.get(slot, 0)
                if cell.record is not None:
                    cell.sdv = sdv_status(cell.record, verifications.get(slot))
        for sig, status in statuses:
            if (
                row.visit is not None
                and status != "voided"
                and (sig.visit_id == row.visit.pk or sig.scope == Signature.Scope.CASEBOOK)
            ):
                row.signature, row.signature_status = sig, status
                break
    record.signatures = statuses


# ---- user access (administrators) ------------------------------------------------------------

# The AuthEvents that change what a user may do; logins and failures are not access changes.
ACCESS_CHANGE_KINDS = (
    AuthEvent.Kind.ROLE_CHANGE,
    AuthEvent.Kind.SITE_CHANGE,
    AuthEvent.Kind.ACCOUNT_CHANGE,
    AuthEvent.Kind.SECOND_FACTOR_ENROLLED,
    AuthEvent.Kind.SECOND_FACTOR_RESET,
)


@dataclass(frozen=True)
class UserAccess:
    user: object
    roles: list[str]
    sites: list[str]
    changes: list[AuthEvent]  # newest first
    # When the user accepted the e-signature agreement (None: has never signed).
    signature_agreed_at: datetime | None = None

    def as_dict(self) -> dict:
        """What an access review keeps of this user (and the CSV's columns)."""
        u = self.user
        return {
            "username": u.username,
            "full_name": u.get_full_name(),
            "roles": self.roles,
            "sites": self.sites,
            "superuser": u.is_superuser,
            "staff": u.is_staff,
            "active": u.is_active,
            "date_joined_utc": u.date_joined.astimezone(UTC).isoformat(),
            "last_login_utc": u.last_login.astimezone(UTC).isoformat() if u.last_login else "",
            "signature_agreement_utc": (
                self.signature_agreed_at.astimezone(UTC).isoformat()
                if self.signature_agreed_at
                else ""
            ),
        }


def user_access_list() -> list[UserAccess]:
    """Every account (deactivated ones too: nothing is deleted) with its roles, sites and
    history of access changes (who changed what, when). Four queries whatever the number of
    users."""
    users = (
        get_user_model()
        .objects.prefetch_related("groups", "site_memberships__site")
        .select_related("signature_agreement")
        .order_by("username")
    )
    changes: dict[str, list[AuthEvent]] = defaultdict(list)
    for event in AuthEvent.objects.filter(kind__in=ACCESS_CHANGE_KINDS).order_by(
        "-timestamp", "-id"
    ):
        changes[event.username].append(event)
    return [
        UserAccess(
            user=u,
            roles=sorted(g.name for g in u.groups.all()),
            sites=sorted(m.site.code for m in u.site_memberships.all()),
            changes=changes[u.username],
            signature_agreed_at=getattr(getattr(u, "signature_agreement", None), "agreed_at", None),
        )
        for u in users
    ]


def access_reviews() -> list[AccessReview]:
    """Every recorded access review, newest first."""
    return list(AccessReview.objects.select_related("reviewed_by"))


# ---- source data verification ----------------------------------------------------------------


class SdvStatus:
    PENDING = "pending"
    VERIFIED = "verified"
    CHANGED = "changed"

    LABELS = {
        PENDING: "Not verified yet",
        VERIFIED: "Source-verified",
        CHANGED: "Changed since verification",
    }


def record_values_hash(record) -> str:
    """SHA-256 of one form's values as stored (ids, not names: the hash must not move when
    another record is renamed)."""
    payload = {
        "form": record.crf_code,
        "visit": record.visit_id,
        "sequence": record.sequence,
        "data": snapshot(record, readable=False),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def sdv_status(record, verification: SourceVerification | None) -> str:
    """Verified while the form holds exactly the values verified; changed after any edit (or
    when the verified form was voided and entered again)."""
    if verification is None:
        return SdvStatus.PENDING
    if verification.record_id != record.pk or verification.record_hash != record_values_hash(
        record
    ):
        return SdvStatus.CHANGED
    return SdvStatus.VERIFIED


def latest_verifications(
    queryset: QuerySet[SourceVerification],
) -> dict[tuple[int, str, int], SourceVerification]:
    """(visit id, form code, sequence) -> the newest verification of that form slot."""
    latest: dict[tuple[int, str, int], SourceVerification] = {}
    for v in queryset.select_related("verified_by").order_by("verified_at", "id"):
        latest[(v.visit_id, v.form_code, v.sequence)] = v
    return latest


@dataclass(frozen=True)
class SdvRow:
    record: object
    status: str
    verification: SourceVerification | None

    @property
    def status_label(self) -> str:
        return SdvStatus.LABELS[self.status]

    @property
    def form_label(self) -> str:
        """ "Semen analysis 1" where the visit expects several, as on the patient matrix."""
        record = self.record
        repeat = dict(record.visit.definition.expected_forms).get(record.crf_code, 1)
        return f"{record.crf_title} {record.sequence}" if repeat > 1 else record.crf_title


SDV_PAGE_SIZE = 50
# The worklist's order of statuses, stored as SdvFormStatus.rank.
SDV_RANK = {SdvStatus.CHANGED: 0, SdvStatus.PENDING: 1, SdvStatus.VERIFIED: 2}


def _bytewise_collation() -> str:
    """The collation that orders text by its bytes (as Python's sort of str does for the
    identifiers sorted here): "C" on PostgreSQL, BINARY on SQLite."""
    return "C" if connection.vendor == "postgresql" else "BINARY"


class SdvWorklist:
    """The monitor's worklist (every live form of the user's sites with its SDV status, the
    forms changed since verification first, then those not yet verified), read from the
    stored status (SdvFormStatus, kept current by the writes: monitoring.services): the tabs'
    counts are one indexed GROUP BY, a page one indexed ORDER BY/LIMIT with its visits and
    verifications joined. Nothing grows with the number of patients.

    A lazy sequence for Paginator: `len()` is the count of the status asked (from the tabs'
    counts), a slice reads only its rows. A row's record holds only the columns the list shows
    (the others deferred, as with `.only()`): read a whole form from its own page.

    Forms written outside the application (raw SQL: queued in SdvRecheck by a PostgreSQL
    trigger) are hashed again first (`services.sdv_recheck`; one query when none is queued)."""

    def __init__(self, *, user, site_code: str = "", status: str = ""):
        self.user, self.site_code, self.status = user, site_code, status
        self._counts: dict[str, int] | None = None
        self._checked = False

    def _rows(self) -> QuerySet[SdvFormStatus]:
        if not self._checked:
            from .services import sdv_recheck

            sdv_recheck()
            self._checked = True
        rows = SdvFormStatus.objects.for_user(self.user)
        if self.site_code:
            rows = rows.filter(site__code=self.site_code)
        return rows

    # ---- the sequence ----

    def counts(self) -> dict[str, int]:
        """Status -> number of forms, for the tabs: one aggregate over the few count rows
        (SdvCount: per site, status and slot, kept by triggers), not over the forms."""
        if self._counts is None:
            if not self._checked:
                self._rows()  # the forms queued by the database hashed first
            counts = SdvCount.objects.for_user(self.user)
            if self.site_code:
                counts = counts.filter(site__code=self.site_code)
            found = dict(counts.order_by().values_list("status").annotate(n=Sum("n")))
            self._counts = {key: found.get(key, 0) for key in SdvStatus.LABELS}
        return self._counts

    def count(self) -> int:
        counts = self.counts()
        return counts[self.status] if self.status else sum(counts.values())

    def __len__(self) -> int:
        return self.count()

    def __iter__(self):
        return iter(self[0 : len(self)])

    def __getitem__(self, key):
        if isinstance(key, int):
            index = key + len(self) if key < 0 else key
            rows = self[index : index + 1] if index >= 0 else []
            if not rows:
                raise IndexError(key)
            return rows[0]
        start, stop, step = key.indices(len(self))
        if step != 1:
            raise ValueError("An SDV worklist is sliced without a step.")
        if stop <= start:
            return []
        return self._page(offset=start, limit=stop - start)

    def _page(self, *, offset: int, limit: int) -> list[SdvRow]:
        """One query: the stored rows of the page in the worklist's order (the index's), with
        their visits and verifications; each form as a record with the columns the list
        shows (the rest deferred, as `.only()` would)."""
        from django.db import router
        from django.db.models.functions import Collate

        rows = self._rows()
        if self.status:
            rows = rows.filter(rank=SDV_RANK[self.status])
        bytewise = _bytewise_collation()
        order = (
            "rank",
            Collate("study_id", bytewise),
            "definition_order",
            Collate("form_code", bytewise),
            "sequence",
            "record_id",
        )
        # The page's keys by the index alone (OFFSET skips index entries, not joined rows),
        # then those rows with their visits and verifications: one query.
        keys = rows.order_by(*order).values("pk")[offset : offset + limit]
        page = (
            SdvFormStatus.objects.filter(pk__in=keys)
            .select_related(
                "visit__definition", "visit__patient__site", "verification__verified_by"
            )
            .order_by(*order)
        )
        out = []
        for row in page:
            model = crf.get(row.form_code).model
            record = model.from_db(
                router.db_for_read(model),
                ["id", "visit_id", "sequence", "assessment_date"],
                [row.record_id, row.visit_id, row.sequence, row.assessment_date],
            )
            record.visit = row.visit
            out.append(SdvRow(record, row.status, row.verification))
        return out


def sdv_worklist(*, user, site_code: str = "", status: str = "") -> SdvWorklist:
    """The monitor's list: every live form of the user's sites with its SDV status, the forms
    still to verify first; a lazy sequence that reads only the slice asked for."""
    return SdvWorklist(user=user, site_code=site_code, status=status)


def record_sdv(*, record) -> SdvRow:
    """One form's SDV status, for its page."""
    verification = (
        SourceVerification.objects.filter(
            visit_id=record.visit_id, form_code=record.crf_code, sequence=record.sequence
        )
        .select_related("verified_by")
        .order_by("-verified_at", "-id")
        .first()
    )
    return SdvRow(record, sdv_status(record, verification), verification)


def audit_trail_reviews(*, user, limit: int = 20) -> list[AuditTrailReview]:
    """The recorded audit-trail reviews that cover one of the user's sites, newest first."""
    mine = {site.code for site in sites_for_user(user=user)}
    # Sites covered are a JSON list (no portable "overlaps" lookup), so read newest first in
    # chunks until `limit` are found: a fixed slice before the filter let other sites' newer
    # reviews hide this site's own. Reviews are few (one per monitor and period).
    found = []
    reviews = AuditTrailReview.objects.select_related("reviewed_by")
    for review in reviews.iterator(chunk_size=limit * 5):
        if mine & set(review.sites_covered):
            found.append(review)
            if len(found) == limit:
                break
    return found


# ---- CSV downloads (core.csv.streaming_csv_response): the header row, then the rows ---------

CONSENT_AUDIT_CSV_COLUMNS = [
    "study_id",
    "site",
    "consent_state",
    "version_signed",
    "current_version",
    "signed_at_utc",
    "obtained_by",
    "witness",
    "document",
    "withdrawn_on",
    "withdrawal_reason",
    "first_data_date",
    "problems",
]


def consent_audit_csv_rows(rows: Iterable[ConsentAuditRow]) -> Iterator[list]:
    yield CONSENT_AUDIT_CSV_COLUMNS
    for r in rows:
        yield [
            r.patient.study_id,
            r.patient.site.code,
            r.state,
            r.version,
            r.current_version,
            r.signed_at.astimezone(UTC).isoformat() if r.signed_at else "",
            r.obtained_by,
            r.witness,
            "present" if r.document_present else "missing",
            r.withdrawn_on.isoformat() if r.withdrawn_on else "",
            r.withdrawal_reason,
            r.first_data_date.isoformat() if r.first_data_date else "",
            "; ".join(r.problems),
        ]


USER_ACCESS_CSV_COLUMNS = [
    "username",
    "full_name",
    "roles",
    "sites",
    "superuser",
    "staff",
    "active",
    "date_joined_utc",
    "last_login_utc",
    "signature_agreement_utc",
]


def user_access_csv_rows(rows: Iterable[UserAccess]) -> Iterator[list]:
    yield USER_ACCESS_CSV_COLUMNS
    for row in rows:
        values = row.as_dict()
        values["roles"], values["sites"] = "; ".join(row.roles), "; ".join(row.sites)
        yield [values[c] for c in USER_ACCESS_CSV_COLUMNS]


def access_history_csv_rows(rows: Iterable[UserAccess]) -> Iterator[list]:
    """The access changes of every user (UserAccess.changes), newest first per user."""
    yield ["timestamp_utc", "username", "change", "detail", "changed_by", "ip"]
    for row in rows:
        for e in row.changes:
            yield [
                e.timestamp.astimezone(UTC).isoformat(),
                e.username,
                e.kind,
                e.detail,
                e.actor_name,
                e.ip_address or "",
            ]
