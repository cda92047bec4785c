import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.identifiers import IDENTIFIER_HIDDEN, identifier_fields, identity_site_ids, record_sites

from .models import AuditEntry

# The patient model, read from the trail's own foreign key: the audit app needs no import of
# the patients app (which imports it).
Patient = AuditEntry._meta.get_field("patient").related_model
# Rows masked per batch while a long trail streams (one site look-up per record type each).
MASK_BATCH = 2000


def record_history(*, instance) -> QuerySet[AuditEntry]:
    """Every audit row of one record, oldest first: the complete chain of each field."""
    return AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(type(instance)), object_id=instance.pk
    ).order_by("timestamp", "id")


def study_configuration_rows() -> Q:
    """Audit rows of the study configuration: the trial app's tables (protocol, sites, site
    memberships, visit definitions, consent versions) and users' roles."""
    return Q(content_type__app_label="trial") | Q(
        content_type__app_label="auth", content_type__model="user", field_name="roles"
    )


def visible_entries(*, user) -> QuerySet[AuditEntry]:
    """The rows of the user's sites. Rows without a patient (database-level changes, system
    records, access reviews) are for administrators only (AuditEntry.sees_unsited_rows)."""
    return AuditEntry.objects.for_user(user)


def audit_trail(
    *,
    user,
    study_id: str = "",
    username: str = "",
    form_code: str = "",
    record_type: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditEntry]:
    """The trail the user's sites may see, searched. `record_type`: "clinical" or
    "configuration" (the study configuration, seen by administrators)."""
    qs = visible_entries(user=user).select_related("patient", "content_type")
    if study_id:
        qs = qs.filter(patient__study_id__iexact=study_id.strip())
    if username:
        qs = qs.filter(user_name__iexact=username.strip())
    if form_code:
        qs = qs.filter(form_code=form_code)
    if record_type == "configuration":
        qs = qs.filter(study_configuration_rows())
    elif record_type == "clinical":
        qs = qs.exclude(study_configuration_rows())
    tz = timezone.get_current_timezone()
    if date_from:
        qs = qs.filter(timestamp__gte=datetime.combine(date_from, time.min, tzinfo=tz))
    if date_to:
        qs = qs.filter(timestamp__lte=datetime.combine(date_to, time.max, tzinfo=tz))
    return qs.order_by("-timestamp", "-id")


# ---- the trail's pages: keyset pagination, no COUNT(*) ----------------------------------------

TRAIL_PAGE_SIZE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"^(-?\d{1,18})_(\d{1,18})$")


def trail_cursor(entry: AuditEntry) -> str:
    """A row's place in the trail's order (timestamp, id), for a "newer" or "older" link:
    microseconds since 1970 (UTC) and the id, "1773216000123456_4711"."""
    return f"{(entry.timestamp - _EPOCH) // timedelta(microseconds=1)}_{entry.pk}"


def parse_trail_cursor(text: str) -> tuple[datetime, int] | None:
    """(timestamp, id) of a cursor; None for anything else (a tampered address: the first
    page, never an error)."""
    match = _CURSOR.match(text or "")
    if not match:
        return None
    try:
        at = _EPOCH + timedelta(microseconds=int(match[1]))
    except OverflowError:
        return None
    return at, int(match[2])


@dataclass
class TrailPage:
    """One page of the trail, newest first, and the cursors of the pages either side (None:
    there is none). Iterates over its rows, as a Paginator's page does."""

    object_list: list[AuditEntry]
    newer: str | None = None
    older: str | None = None
    size: int = field(default=TRAIL_PAGE_SIZE)

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)


def trail_page(
    entries: QuerySet[AuditEntry], *, older: str = "", newer: str = "", size: int = TRAIL_PAGE_SIZE
) -> TrailPage:
    """A page of `entries` (audit_trail: ordered by timestamp and id, newest first) cut by
    keyset: the rows older than the cursor `older`, or newer than `newer`, one query of
    size + 1 rows over the (timestamp, id) index, whatever the size of the trail. No count:
    the page links to the newer and older pages only. A bad cursor is the first page."""
    if cursor := parse_trail_cursor(older):
        at, pk = cursor
        rows = list(
            entries.filter(timestamp__lte=at).filter(
                Q(timestamp__lt=at) | Q(timestamp=at, id__lt=pk)
            )[: size + 1]
        )
        page = rows[:size]
        return TrailPage(
            page,
            newer=trail_cursor(page[0]) if page else None,
            older=trail_cursor(page[-1]) if len(rows) > size else None,
            size=size,
        )
    if cursor := parse_trail_cursor(newer):
        at, pk = cursor
        rows = list(
            entries.filter(timestamp__gte=at)
            .filter(Q(timestamp__gt=at) | Q(timestamp=at, id__gt=pk))
            .order_by("timestamp", "id")[: size + 1]
        )
        if len(rows) > size:
            page = rows[:size][::-1]
            return TrailPage(
                page, newer=trail_cursor(page[0]), older=trail_cursor(page[-1]), size=size
            )
        # Back at the newest rows: the first page, full.
    rows = list(entries[: size + 1])
    page = rows[:size]
    return TrailPage(page, older=trail_cursor(page[-1]) if len(rows) > size else None, size=size)


# ---- identifiers --------------------------------------------------------------------------------


def hide_identifier_values(entry: AuditEntry) -> AuditEntry:
    """The row as a user who may not see the patient's identity reads it: field, who, when
    and why as they are; the old and new value hidden (an empty one stays empty: that a value
    was added or removed identifies no one). In memory only: rows are never saved again."""
    entry.old_value = IDENTIFIER_HIDDEN if entry.old_value else ""
    entry.new_value = IDENTIFIER_HIDDEN if entry.new_value else ""
    entry.identifier_hidden = True
    return entry


def _model(entry: AuditEntry):
    return ContentType.objects.get_for_id(entry.content_type_id).model_class()


def _entry_sites(entries: list[AuditEntry]) -> dict[int, int | None]:
    """id(entry) -> the site of the patient the row is about: the row's patient, or, for a row
    the database trigger wrote (no patient), the record's own site. One query per record type
    whose site is not already loaded."""
    patients = {
        e.patient_id for e in entries if e.patient_id and not AuditEntry.patient.is_cached(e)
    }
    patient_sites = record_sites(Patient, patients)
    orphans: dict[type, set[int]] = {}
    for e in entries:
        if not e.patient_id:
            orphans.setdefault(_model(e), set()).add(e.object_id)
    record_site = {model: record_sites(model, ids) for model, ids in orphans.items()}
    sites = {}
    for e in entries:
        if e.patient_id:
            cached = AuditEntry.patient.is_cached(e)
            sites[id(e)] = e.patient.site_id if cached else patient_sites.get(e.patient_id)
        else:
            sites[id(e)] = record_site[_model(e)].get(e.object_id)
    return sites


def hide_identifiers_in(entries: list[AuditEntry], *, visible_sites: frozenset[int]) -> None:
    """Hide, in these rows, the values of identifier fields of patients outside
    `visible_sites` (core.identifiers.identity_site_ids, computed once by the caller)."""
    fields = {}
    identifying = []
    for e in entries:
        if e.content_type_id not in fields:
            fields[e.content_type_id] = identifier_fields(_model(e))
        if e.field_name in fields[e.content_type_id]:
            identifying.append(e)
    if not identifying:
        return
    # Most readers of the trail (monitors, admins) see no identity: nothing to look up.
    sites = _entry_sites(identifying) if visible_sites else {}
    for e in identifying:
        if sites.get(id(e)) not in visible_sites:
            hide_identifier_values(e)


def hide_identifiers(entries: Iterable[AuditEntry], *, user) -> Iterator[AuditEntry]:
    """The rows, with the values of identifier fields (core.identifiers) hidden unless the user
    is staff of that patient's site. Lazy and batched, for a streamed CSV as for a page: one
    query for the user's sites, then per batch at most one per record type whose site is not
    loaded (none for a user who sees no identity: monitors, admins)."""
    visible_sites = identity_site_ids(user=user)
    rows = iter(entries)
    while batch := list(islice(rows, MASK_BATCH)):
        hide_identifiers_in(batch, visible_sites=visible_sites)
        yield from batch


AUDIT_TRAIL_CSV_COLUMNS = [
    "timestamp_utc",
    "user",
    "action",
    "study_id",
    "form",
    "record",
    "field",
    "old_value",
    "new_value",
    "reason",
    "ip_address",
    "user_agent",
    "channel",
]


def audit_trail_csv_rows(entries: Iterable[AuditEntry]) -> Iterator[list]:
    """The audit trail's CSV: the header, then one row per entry (identifiers already hidden
    by `hide_identifiers`)."""
    yield AUDIT_TRAIL_CSV_COLUMNS
    for e in entries:
        yield [
            e.timestamp.astimezone(UTC).isoformat(),
            e.user_name,
            e.action,
            e.patient.study_id if e.patient_id else "",
            e.form_code,
            e.object_repr,
            e.field_name,
            e.old_value,
            e.new_value,
            e.reason,
            e.ip_address or "",
            e.user_agent,
            e.channel,
        ]
