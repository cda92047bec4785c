"""Optimistic concurrency for every editable record, read from the audit trail.

A form carries the version of the record it was loaded at: the id of the record's newest
audit row (0 for a form that was empty). When it is saved from an older version, the trail
says exactly what changed meanwhile, who changed it and when, and what the record held when
the user loaded it. So a stale save:
* keeps every change made meanwhile to a field the user did not touch (no silent revert, and
  the trail does not blame the user for a change they never made);
* is refused, with who/when/what for each field, when the user changed a field that someone
  else changed too. The form keeps what they typed; saving again then means "mine wins".
The current row is locked first (SELECT ... FOR UPDATE on PostgreSQL), so two saves of one
record are decided one after the other, never interleaved."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Max
from django.utils import timezone

from .models import AuditEntry
from .services import snapshot


@dataclass(frozen=True)
class ChangeMeanwhile:
    field_name: str
    label: str
    user_name: str
    at: datetime
    value: str  # as a person reads it (the choice's label, "empty")

    def describe(self) -> str:
        at = timezone.localtime(self.at)
        return (
            f"{self.label} was changed to {self.value} by {self.user_name} at {at:%d %b %Y %H:%M}"
        )


class EditConflict(ValidationError):
    """The user changed fields that someone else changed since the form was loaded.
    `version` is the record's version now: a form re-shown with it saves the user's values."""

    def __init__(self, message, *, changes: list[ChangeMeanwhile], version: int):
        super().__init__(message)
        self.changes = changes
        self.version = version


def _entries(instance: models.Model):
    return AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(type(instance)), object_id=instance.pk
    )


def record_version(instance: models.Model | None) -> int:
    """The version a form is loaded at: the id of the record's newest audit row."""
    if instance is None or instance.pk is None:
        return 0
    return _entries(instance).aggregate(v=Max("id"))["v"] or 0


def _label(model, name: str) -> str:
    try:
        return str(model._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def _display(model, name: str, text: str) -> str:
    if text == "":
        return "empty"
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return text
    choices = {str(k): str(v) for k, v in (field.flatchoices or [])}
    return choices.get(text, text)


def changes_since(instance: models.Model, version: int) -> dict[str, list[AuditEntry]]:
    """Field name -> the trail's rows that changed it after `version`, oldest first."""
    rows = (
        _entries(instance)
        .filter(id__gt=version, action=AuditEntry.Action.UPDATE)
        .exclude(field_name="")
        .order_by("id")
    )
    changed: dict[str, list[AuditEntry]] = {}
    for row in rows:
        changed.setdefault(row.field_name, []).append(row)
    return changed


def _meanwhile(model, name: str, rows: list[AuditEntry]) -> ChangeMeanwhile:
    last = rows[-1]
    return ChangeMeanwhile(
        field_name=name,
        label=_label(model, name),
        user_name=last.user_name,
        at=last.timestamp,
        value=_display(model, name, last.new_value),
    )


def lock_stored(record: models.Model) -> models.Model:
    """The record as stored, its row locked (SELECT ... FOR UPDATE on PostgreSQL) until the
    transaction ends: saves of one record are decided one after the other. The caller passes
    it on (merge_concurrent_edit, audited_save's `stored`), so it is read once per save."""
    return type(record)._base_manager.select_for_update().get(pk=record.pk)


def merge_concurrent_edit(
    *, record: models.Model, loaded_version: int | None, stored: models.Model | None = None
) -> list[ChangeMeanwhile]:
    """Before a record loaded at `loaded_version` is saved with the user's values: lock it,
    put back every change made meanwhile to a field the user left alone, and refuse (raise
    EditConflict) if the user changed a field someone else changed too. Returns the changes
    kept, for the user to be told. A new record, or no version (a service called directly),
    is not checked. `stored`: the row already locked by the caller (lock_stored).

    Two statements: the lock, then the trail's rows after `loaded_version`. They cannot be
    one: a statement that waited for the lock still reads with the snapshot it started with
    (PostgreSQL, READ COMMITTED), so the audit rows of the save it waited for would be
    missing from it; the second statement, taken after the lock, sees them."""
    if record.pk is None or loaded_version is None:
        return []
    model = type(record)
    current = stored if stored is not None else lock_stored(record)
    changed = changes_since(record, loaded_version)
    if not changed:
        return []
    now = snapshot(current)
    loaded = dict(now)
    for name, rows in changed.items():
        loaded[name] = rows[0].old_value
    mine = snapshot(record)
    conflicts, kept = [], []
    for name, rows in changed.items():
        if name not in mine:
            continue
        if mine[name] not in (loaded[name], now[name]):
            conflicts.append(_meanwhile(model, name, rows))
        elif mine[name] == loaded[name] and now[name] != loaded[name]:
            # The user's form still shows the old value: keep the newer one.
            field = model._meta.get_field(name)
            setattr(record, field.attname, getattr(current, field.attname))
            kept.append(_meanwhile(model, name, rows))
    if conflicts:
        raise EditConflict(
            {
                **{
                    c.field_name: [
                        f"Changed meanwhile by {c.user_name} at "
                        f"{timezone.localtime(c.at):%H:%M}: now {c.value}. Yours is kept here; "
                        "save again to replace theirs."
                    ]
                    for c in conflicts
                },
                "__all__": [
                    "Someone saved this form while you were editing it: "
                    + "; ".join(c.describe() for c in conflicts)
                    + ". Nothing of yours was saved yet. Check the fields marked below and save "
                    "again to keep your values."
                ],
            },
            changes=conflicts,
            version=record_version(record),
        )
    return kept


def entered_meanwhile(*, existing: models.Model) -> EditConflict:
    """The form was loaded empty and someone entered the same slot before this save."""
    first = _entries(existing).order_by("id").first()
    who = first.user_name if first else "another user"
    when = f" at {timezone.localtime(first.timestamp):%d %b %Y %H:%M}" if first else ""
    return EditConflict(
        f"{who} entered this form{when} while you were typing, so yours was not saved. Your "
        "values are kept below, over theirs: check them, give a reason, and save to replace "
        "theirs, or leave the page to keep theirs.",
        changes=[],
        version=record_version(existing),
    )
