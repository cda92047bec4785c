"""Direct identifiers: which fields are, and who may read them. The one rule every page, CSV,
PDF and export asks (patients' own pages, the audit trail, history, review, admin, ODM,
casebooks), so that no surface decides it again.

A model marks its identifier fields declaratively, `identifier_fields = ("phone",)`, or
`identifier_fields = ALL_FIELDS` when the whole record is identifying (PatientIdentity).
Whoever may not see a patient's identifiers reads IDENTIFIER_HIDDEN instead of the value:
never the value, never a hash of it (a phone number's hash is reversed by trying them all).
"""

from collections.abc import Iterable

from django.db import models

from .roles import Role
from .scoping import member_site_ids

IDENTIFIER_HIDDEN = "[identifier hidden]"
ALL_FIELDS = "__all__"
# Staff who work with the patient in person. Not monitors, and not admins by being admins.
IDENTITY_ROLES = (Role.ANDROLOGIST, Role.COORDINATOR, Role.LAB_TECHNICIAN)


def identifier_fields(model: type[models.Model] | None) -> frozenset[str]:
    """The names of the model's identifier fields, under both spellings an audit row may use:
    the field's name ("patient", as the application writes it) and its column's ("patient_id",
    as the database trigger writes it)."""
    declared = getattr(model, "identifier_fields", ()) if model is not None else ()
    if not declared:
        return frozenset()
    opts = model._meta
    fields = (
        opts.concrete_fields if declared == ALL_FIELDS else [opts.get_field(n) for n in declared]
    )
    return frozenset(name for f in fields for name in (f.name, f.attname))


def identity_site_ids(*, user) -> frozenset[int]:
    """The sites whose patients' identifiers the user may see: those where they are staff
    (an identity role and a membership of the site). At most one query: none for a user
    whose roles were read already and hold no identity role (a monitor on the audit pages),
    or for no user at all (a job with no requester sees no identity)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    known = getattr(user, "_role_names", None)  # core.roles' cache, when read already
    if known is not None and not known.intersection(IDENTITY_ROLES):
        return frozenset()
    # Otherwise role and membership in one query (the same count whatever was read before).
    return member_site_ids(user=user, roles=IDENTITY_ROLES)


def can_see_identity(*, user, patient) -> bool:
    """Whether the user may see this patient's direct identifiers: only staff working at the
    patient's own site (not monitors, not admins by virtue of being admins)."""
    return patient.site_id in identity_site_ids(user=user)


def record_sites(model: type[models.Model], pks: Iterable[int]) -> dict[int, int]:
    """pk -> site id of site-scoped records (through the model's `site_lookup`, as
    core.scoping), in one query. Empty for a model that belongs to no site: its rows are then
    treated as belonging to no site the user may see."""
    pks = set(pks)
    lookup = getattr(model, "site_lookup", None)
    if not pks or lookup is None:
        return {}
    if lookup == "":  # the site itself
        return {
            pk: pk for pk in model._base_manager.filter(pk__in=pks).values_list("pk", flat=True)
        }
    return dict(model._base_manager.filter(pk__in=pks).values_list("pk", lookup))
