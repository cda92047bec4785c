from django.db.models import QuerySet
from django.utils import timezone

from .models import ConsentVersion, Protocol, StudySite, VisitDefinition


def active_protocol() -> Protocol | None:
    """The protocol this deployment runs (one per deployment for now)."""
    return Protocol.objects.order_by("id").first()


def sites_for_user(*, user) -> QuerySet[StudySite]:
    return StudySite.objects.for_user(user).order_by("code")


def visit_definitions(*, protocol: Protocol) -> list[VisitDefinition]:
    return list(protocol.visits.order_by("order"))


def current_consent_version(*, protocol: Protocol) -> ConsentVersion | None:
    """The newest version already in effect today."""
    return (
        ConsentVersion.objects.filter(protocol=protocol, effective_date__lte=timezone.localdate())
        .order_by("-effective_date", "-id")
        .first()
    )
