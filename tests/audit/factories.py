"""Audit rows at chosen times, for the review's time rules."""

from unittest import mock

from django.contrib.contenttypes.models import ContentType

from audit.models import AuditEntry


def audit_row(*, at, user, patient=None, record=None, action="update", **fields) -> AuditEntry:
    """A row written at `at`. The timestamp is auto_now_add, and on PostgreSQL no audit row can
    be updated afterwards, so auto_now_add is switched off while this one row is inserted: the
    same on SQLite and PostgreSQL. `record`: the CRF record (or visit, patient...) it is about."""
    target = record if record is not None else patient
    values = {
        "user": user,
        "user_name": user.get_username() if user is not None else "database:edc",
        "action": action,
        "content_type": ContentType.objects.get_for_model(type(target)),
        "object_id": target.pk,
        "object_repr": str(target)[:200],
        "patient": patient,
        "form_code": getattr(target, "crf_code", ""),
        "field_name": "volume_ml",
        "old_value": "2.5",
        "new_value": "3.0",
        "reason": "Transcription error corrected from the lab sheet",
    }
    values.update(fields)
    with mock.patch.object(AuditEntry._meta.get_field("timestamp"), "auto_now_add", False):
        return AuditEntry.objects.create(timestamp=at, **values)
