"""Writing the audit trail and the access log. Called by the services that change clinical
records (trial's, through core.trail), never by views, so every write path goes through it;
`auth_event_log` is the access log's one writer (sign-in, lockout, access changes)."""

from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction

from core.change_reason import current_change_reason
from core.request_source import client_ip, current_request, current_source

from .models import AuditEntry, AuthEvent

# Bookkeeping columns: who/when is the audit row itself.
SKIPPED_FIELDS = {"id", "uuid", "created_at", "created_by", "updated_at", "updated_by"}


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if hasattr(value, "name") and hasattr(value, "storage"):  # FieldFile
        return value.name or ""
    return str(value)


def snapshot(instance: models.Model, *, readable: bool = True) -> dict[str, str]:
    """Field name -> value as text, for every concrete data field. A reference to another
    record reads as that record ("BEN-003 M4 (#55)"), so the trail is legible on its own;
    `readable=False` keeps raw ids (for hashes that must not depend on other records' names)."""
    values = {}
    for field in instance._meta.concrete_fields:
        if field.name in SKIPPED_FIELDS:
            continue
        raw = getattr(instance, field.attname)
        if isinstance(field, models.DecimalField) and isinstance(raw, Decimal):
            # As the database will return it: a value typed "24.1" reads "24.10" (2 places),
            # so the new value of this change is the old value of the next one, and a hash
            # over a just-saved record equals the hash over the same record read back.
            raw = raw.quantize(Decimal(1).scaleb(-field.decimal_places))
        if readable and field.is_relation and raw is not None:
            values[field.name] = f"{getattr(instance, field.name)} (#{raw})"
        else:
            values[field.name] = _as_text(raw)
    return values


def _base(instance, *, user, patient, action, reason, form_code) -> dict:
    source = current_source()
    return {
        "ip_address": source.ip_address,
        "user_agent": source.user_agent,
        "channel": source.channel,
        "user": user,
        "user_name": user.get_username() if user else "system",
        "action": action,
        "content_type": ContentType.objects.get_for_model(type(instance)),
        "object_id": instance.pk,
        "object_repr": str(instance)[:200],
        "patient": patient,
        "form_code": form_code,
        "reason": reason,
    }


def audit_record_change(
    *,
    instance: models.Model,
    before: dict[str, str] | None,
    user,
    patient=None,
    reason: str = "",
    form_code: str = "",
    action: str | None = None,
) -> list[AuditEntry]:
    """Write one row per field whose value changed (every non-empty field on create)."""
    after = snapshot(instance)
    if action is None:
        action = AuditEntry.Action.CREATE if before is None else AuditEntry.Action.UPDATE
    before = before or {}
    base = _base(
        instance,
        user=user,
        patient=patient,
        action=action,
        reason=reason,
        form_code=form_code or getattr(instance, "crf_code", ""),
    )
    rows = [
        AuditEntry(field_name=name, old_value=before.get(name, ""), new_value=value, **base)
        for name, value in after.items()
        if before.get(name, "") != value
    ]
    return AuditEntry.objects.bulk_create(rows)


def set_audit_context(value: str) -> None:
    """'app' while the application writes what it audits itself; '' otherwise."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('edc.audit_context', %s, true)", [value])


@contextmanager
def app_write():
    """Tell PostgreSQL's capture trigger that this write is audited by the application, so it
    is recorded once (with user and reason) and not a second time as an anonymous database
    change. Transaction-local, and reset right after: a QuerySet.update() or raw SQL later in
    the same transaction is still captured by the trigger."""
    if connection.vendor != "postgresql":
        yield
        return
    set_audit_context("app")
    try:
        yield
    finally:
        set_audit_context("")


def _share_related(row: models.Model, source: models.Model) -> None:
    """Give `row` (the stored version of `source`, just read) the related objects `source`
    already holds for the same ids, so that its readable snapshot ("BEN-003 M4 (#55)")
    costs no query: the same id is the same record."""
    for field in row._meta.concrete_fields:
        if not field.is_relation or not field.is_cached(source):
            continue
        if getattr(row, field.attname) == getattr(source, field.attname):
            field.set_cached_value(row, field.get_cached_value(source))


def announce_app_row() -> None:
    """PostgreSQL: the next row written to an audited table is the application's, recorded by
    it with user and reason, so the capture trigger skips it; the trigger uses the
    announcement up on that row (audit/dbtriggers.py, 'app-row'), so nothing else in the
    transaction escapes capture and no statement is needed to reset it. Transaction-local:
    a rollback (to the service's savepoint, or of the whole transaction) takes it back too."""
    set_audit_context("app-row")


def audited_save(
    instance: models.Model,
    *,
    user,
    patient=None,
    reason: str = "",
    form_code: str = "",
    action: str | None = None,
    stored: models.Model | None = None,
) -> list[AuditEntry]:
    """Save a clinical record and write its audit rows, as one unit. The only way services
    write clinical rows.

    `stored`: the record as it is in the database, already read (and locked) by the caller
    in this transaction (crf_save's optimistic-concurrency check): it is the trail's "before"
    and is not read again.

    Part of its caller's transaction (every service is atomic): no savepoint of its own, so a
    failure here rolls back the caller's unit (its savepoint, or the whole transaction), as it
    must, since the caller's own writes before it belong with it. Costs, on PostgreSQL: the
    read of the stored row (unless given), the announcement for the capture trigger, the
    INSERT or UPDATE, and one bulk INSERT of the audit rows (the chain trigger hashes them)."""
    with transaction.atomic(savepoint=False):
        before = None
        if instance.pk is not None:
            if stored is None:
                stored = type(instance)._base_manager.get(pk=instance.pk)
            _share_related(stored, instance)
            before = snapshot(stored)
        if user is not None and hasattr(instance, "updated_by_id"):
            if instance.pk is None:
                instance.created_by = user
            instance.updated_by = user
        if instance._meta.parents:
            # More than one row per save (multi-table inheritance): the whole save is the app's.
            with app_write():
                instance.save()
        else:
            announce_app_row()
            instance.save()
        return audit_record_change(
            instance=instance,
            before=before,
            user=user,
            patient=patient,
            reason=reason,
            form_code=form_code,
            action=action,
        )


def audited_delete(instance: models.Model, *, user, reason: str = "") -> list[AuditEntry]:
    """Delete a row that may be deleted (a site membership: access, not data) and keep its
    values in the trail: one row per field, old value -> nothing. Clinical records are
    voided instead, and the database refuses their deletion."""
    with transaction.atomic():
        before = snapshot(instance)
        base = _base(
            instance,
            user=user,
            patient=None,
            action=AuditEntry.Action.DELETE,
            reason=reason,
            form_code="",
        )
        with app_write():
            instance.delete()
        rows = [
            AuditEntry(field_name=name, old_value=value, new_value="", **base)
            for name, value in before.items()
        ]
        return AuditEntry.objects.bulk_create(rows)


def role_names(user) -> str:
    """A user's roles as the trail shows them: "Andrologist, Monitor"."""
    return ", ".join(sorted(user.groups.values_list("name", flat=True)))


def audit_role_change(*, member, before: str, actor) -> list[AuditEntry]:
    """One row on the user whose roles changed: old roles -> new roles, who, why."""
    after = role_names(member)
    if after == before:
        return []
    base = _base(
        member,
        user=actor,
        patient=None,
        action=AuditEntry.Action.UPDATE,
        reason=current_change_reason(),
        form_code="",
    )
    return [
        AuditEntry.objects.create(field_name="roles", old_value=before, new_value=after, **base)
    ]


def referenced_id(text: str) -> int | None:
    """The id in an audit value of a reference: "BEN-001 SCR (#12)" (or a bare "12", as the
    database trigger writes it) -> 12."""
    text = text.strip()
    if text.endswith(")") and "(#" in text:
        text = text[text.rindex("(#") + 2 : -1]
    return int(text) if text.isdigit() else None


def auth_event_log(
    *, kind: str, username: str, user=None, request=None, detail: str = ""
) -> AuthEvent:
    """One entry of the access log (AuthEvent): sign-ins, failures, lockouts, access changes."""
    # Role and site changes come from model signals, which have no request: the one being
    # served says who made the change and from where (an admin in the admin site).
    request = request if request is not None else current_request()
    actor = getattr(request, "user", None) if request is not None else None
    actor_name = actor.get_username() if actor is not None and actor.is_authenticated else ""
    return AuthEvent.objects.create(
        kind=kind,
        username=username or "",
        user=user,
        ip_address=client_ip(request) if request is not None else None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else "",
        actor_name=actor_name,
        detail=detail,
    )
