"""The study roles. Each is a Django group (created by core's data migration)."""

from django.db import models


class Role(models.TextChoices):
    ANDROLOGIST = "Andrologist", "Andrologist (investigator)"
    COORDINATOR = "Coordinator", "Study coordinator"
    LAB_TECHNICIAN = "Lab technician", "Lab technician"
    MONITOR = "Monitor", "Monitor"
    ADMIN = "Admin", "Administrator"


# Who may enter clinical data; monitors read, query and never type values in.
DATA_ENTRY_ROLES = (Role.ANDROLOGIST, Role.COORDINATOR, Role.LAB_TECHNICIAN)
# Who reads the trial's results (page, CSV, PDF): investigators, monitors and admins, not
# data-entry staff.
RESULTS_ROLES = (Role.ANDROLOGIST, Role.MONITOR, Role.ADMIN)
# Who reads the audit trail and reviews it: monitors and administrators.
AUDIT_ROLES = (Role.ADMIN, Role.MONITOR)


def user_roles(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_role_names", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached.add(Role.ADMIN)
        user._role_names = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
