from datetime import date
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import models, transaction

from core.trail import trail_delete, trail_save

from . import protocol_file
from .models import (
    ConsentVersion,
    Protocol,
    SiteMembership,
    StudySite,
    VisitDefinition,
    signed_version_message,
)


def study_config_save(instance: models.Model, *, user, reason: str = "") -> list:
    """Save a study-configuration row (protocol, site, membership, visit definition, consent
    version) through the audit trail, like clinical data: who, when, old, new, why. A signed
    consent version's label, date and document are refused with a message."""
    if isinstance(instance, ConsentVersion) and instance.changed_fixed_fields():
        label = ConsentVersion._base_manager.values_list("version", flat=True).get(pk=instance.pk)
        raise ValidationError(signed_version_message(label))
    return trail_save(instance, user=user, reason=reason)


def study_config_delete(instance: models.Model, *, user, reason: str = "") -> list:
    """Only a site membership is ever deleted (access, not data); the trail keeps its values.
    Everything else in the study configuration stays, as clinical records do."""
    if not getattr(type(instance), "audit_deletable", False):
        raise ValidationError(f"{instance} is study configuration: it is kept, never deleted.")
    return trail_delete(instance, user=user, reason=reason)


def _load_row(model, lookup: dict, values: dict, *, user, reason: str):
    """update_or_create, audited: a new row is recorded as created, a changed one field by
    field, and an unchanged one not at all (loading the same file twice writes nothing)."""
    instance = model._base_manager.filter(**lookup).first()
    if instance is None:
        instance = model(**lookup, **values)
        study_config_save(instance, user=user, reason=reason)
        return instance
    # Compared as values, not as text: a JSON list read back from PostgreSQL has its keys in
    # another order, and is still the same list.
    changed = {name: value for name, value in values.items() if getattr(instance, name) != value}
    if changed:
        for name, value in changed.items():
            setattr(instance, name, value)
        study_config_save(instance, user=user, reason=reason)
    return instance


@transaction.atomic
def protocol_load(*, path: Path, user=None, reason: str = "") -> Protocol:
    """Create or update the protocol, its sites, consent versions and visit schedule from a
    data file, each change audited as made by `user` (None: the program loading it, which
    the trail names by host and command). Idempotent: loading the same file twice changes
    nothing. A signed consent version cannot be changed by the file either."""
    data = protocol_file.read(path)
    errors, _warnings = protocol_file.problems(data)
    if errors:
        raise ValidationError([f"{path.name}: {e}" for e in errors])
    audit = {"user": user, "reason": reason or f"Loaded from the protocol file {path.name}"}
    protocol = _load_row(
        Protocol,
        {"registry_id": data["registry_id"]},
        {
            "short_name": data["short_name"],
            "title": data["title"],
            "version": data["version"],
            "extension_step_days": data.get("extension_step_days", 60),
            "reminder_lead_days": data.get("reminder_lead_days", 7),
            "eligibility_criteria": protocol_file.eligibility_criteria(data),
        },
        **audit,
    )
    for site in data["sites"]:
        _load_row(
            StudySite, {"code": site["code"]}, {"name": site["name"], "protocol": protocol}, **audit
        )
    for cv in data.get("consent_versions", []):
        _load_row(
            ConsentVersion,
            {"protocol": protocol, "version": cv["version"]},
            {"effective_date": date.fromisoformat(cv["effective_date"])},
            **audit,
        )
    for order, visit in enumerate(data["visits"], start=1):
        _load_row(
            VisitDefinition,
            {"protocol": protocol, "code": visit["code"]},
            {
                "name": visit["name"],
                "order": order,
                "kind": visit["kind"],
                "anchor": visit.get("anchor", VisitDefinition.Anchor.NONE),
                "target_day": visit.get("target_day"),
                "window_before": visit.get("window_before", 0),
                "window_after": visit.get("window_after", 0),
                "forms": visit.get("forms", []),
            },
            **audit,
        )
    return protocol


def site_membership_add(
    *, user, site: StudySite, actor=None, reason: str = "Site access given"
) -> SiteMembership:
    """Give `user` access to `site` (audited as made by `actor`; None: the program)."""
    membership = SiteMembership.objects.filter(user=user, site=site).first()
    if membership is None:
        membership = SiteMembership(user=user, site=site)
        study_config_save(membership, user=actor, reason=reason)
    return membership
