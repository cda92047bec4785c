from datetime import date, datetime, time

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.roles import Role, has_role
from patients.models import Patient

from .models import AuditEntry


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
    records, access reviews) are for administrators only."""
    visible = Q(patient__in=Patient.objects.for_user(user))
    if has_role(user, Role.ADMIN):
        visible |= Q(patient__isnull=True)
    return AuditEntry.objects.filter(visible)


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
