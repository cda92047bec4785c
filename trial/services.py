from datetime import date
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from . import protocol_file
from .models import ConsentVersion, Protocol, StudySite, VisitDefinition


@transaction.atomic
def protocol_load(*, path: Path) -> Protocol:
    """Create or update the protocol, its sites, consent versions and visit schedule from a
    data file. Idempotent: loading the same file twice changes nothing."""
    data = protocol_file.read(path)
    errors, _warnings = protocol_file.problems(data)
    if errors:
        raise ValidationError([f"{path.name}: {e}" for e in errors])
    protocol, _ = Protocol.objects.update_or_create(
        registry_id=data["registry_id"],
        defaults={
            "short_name": data["short_name"],
            "title": data["title"],
            "version": data["version"],
            "extension_step_days": data.get("extension_step_days", 60),
            "reminder_lead_days": data.get("reminder_lead_days", 7),
            "eligibility_criteria": protocol_file.eligibility_criteria(data),
        },
    )
    for site in data["sites"]:
        StudySite.objects.update_or_create(
            code=site["code"], defaults={"name": site["name"], "protocol": protocol}
        )
    for cv in data.get("consent_versions", []):
        ConsentVersion.objects.update_or_create(
            protocol=protocol,
            version=cv["version"],
            defaults={"effective_date": date.fromisoformat(cv["effective_date"])},
        )
    for order, visit in enumerate(data["visits"], start=1):
        VisitDefinition.objects.update_or_create(
            protocol=protocol,
            code=visit["code"],
            defaults={
                "name": visit["name"],
                "order": order,
                "kind": visit["kind"],
                "anchor": visit.get("anchor", VisitDefinition.Anchor.NONE),
                "target_day": visit.get("target_day"),
                "window_before": visit.get("window_before", 0),
                "window_after": visit.get("window_after", 0),
                "forms": visit.get("forms", []),
            },
        )
    return protocol


def site_membership_add(*, user, site: StudySite):
    from .models import SiteMembership

    membership, _ = SiteMembership.objects.get_or_create(user=user, site=site)
    return membership
