"""What a restored database must show of monitoring (`manage.py verify_restore`,
audit/integrity.py): every e-signature still verifies against the data it covers.
Registered with audit.integrity.register_check in MonitoringConfig.ready()."""

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from audit.integrity import Check
from audit.models import AuditEntry
from core import crf

from .models import Signature
from .selectors import covered_logs, covered_records, signature_status


def _covered_keys(signature) -> set[tuple[int, int]]:
    """(content type id, object id) of what a signature covered when it was signed (its
    `covered` list) and of what it would cover now."""
    models = []
    for entry in signature.covered:
        if entry[0] == "log":
            models.append((apps.get_model(entry[1]), entry[3]))
        elif crf.is_registered(entry[1]):
            models.append((crf.get(entry[1]).model, entry[3]))
    now = covered_records(patient=signature.patient, visit=signature.visit)
    if signature.visit_id is None:
        now += covered_logs(patient=signature.patient)
    models += [(type(record), record.pk) for record in now]
    return {(ContentType.objects.get_for_model(model).pk, pk) for model, pk in models}


def _changed_after_signing(signature) -> int:
    """Audit rows written after the signature about the records it covers (or now would):
    a change through the application, a new log entry, or one recorded by the triggers."""
    by_type: dict[int, set[int]] = {}
    for content_type_id, object_id in _covered_keys(signature):
        by_type.setdefault(content_type_id, set()).add(object_id)
    touched = Q(pk__in=[])
    for content_type_id, ids in by_type.items():
        touched |= Q(content_type_id=content_type_id, object_id__in=ids)
    return AuditEntry.objects.filter(touched, timestamp__gt=signature.signed_at).count()


def signature_check() -> Check:
    """Each signature's stored SHA-256 is checked against the data it covers, with the
    application's own code (monitoring.selectors.signature_status). A casebook signature can
    have been invalidated before the backup, legitimately (an adverse event reported after
    signing; safety data is never blocked): that is shown, and passes when the audit trail
    holds the change. Invalidated with no change recorded after signing means the signed data
    in this copy are not the data that were signed."""
    check = Check("signatures")
    counts = {"valid": 0, "voided": 0, "invalidated": 0}
    signatures = Signature.objects.select_related(
        "patient__site__protocol", "visit__definition", "revocation"
    ).order_by("pk")
    for signature in signatures:
        status = signature_status(signature)
        counts[status] += 1
        if status != "invalidated":
            continue
        label = f"{signature} at {signature.signed_at:%Y-%m-%d %H:%M:%S} UTC (#{signature.pk})"
        changes = _changed_after_signing(signature)
        if changes:
            check.notes.append(
                f"{label}: invalidated before the backup; the audit trail holds "
                f"{changes} row(s) written since signing about the data it covers"
            )
        else:
            check.problems.append(
                f"{label}: its SHA-256 no longer matches the data it covers, and the audit "
                "trail records no change since signing"
            )
    total = sum(counts.values())
    check.summary = (
        f"{total}: {counts['valid']} valid, {counts['voided']} voided by an unlock, "
        f"{counts['invalidated']} invalidated"
        + (" (each by a change the audit trail holds)" if counts["invalidated"] else "")
        if check.passed
        else f"{len(check.problems)} of {total} do not verify"
    )
    return check
