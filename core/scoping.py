"""The one access mechanism: every patient-scoped query goes through `for_user`.

A model opts in by using `SiteScopedQuerySet` as its manager and naming the path to its
`trial.StudySite` in `site_lookup` ("" for StudySite itself). A model whose rows may belong to
no site (a study-wide PDF job, an audit row of the configuration) says who sees those rows with
a `sees_unsited_rows(user)` classmethod; without one, such rows are nobody's. Views use
`SiteScopedMixin` (class-based) or `scoped_object_or_404` (function views); nothing filters by
site by hand.

The other question, "who works at this site" (staff to pick from, coordinators to e-mail,
the sites where a user may see identities), is a membership, answered by `site_staff` and
`member_site_ids`: being a superuser makes no one staff of a site.
"""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.http import Http404


class SiteScopedQuerySet(models.QuerySet):
    def for_user(self, user):
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        lookup = getattr(self.model, "site_lookup", "site")
        prefix = f"{lookup}__" if lookup else ""
        # SiteMembership is unique per (user, site), so this join never duplicates rows.
        visible = Q(**{f"{prefix}memberships__user": user})
        sees_unsited = getattr(self.model, "sees_unsited_rows", None)
        if lookup and sees_unsited is not None and sees_unsited(user):
            visible |= Q(**{f"{lookup}__isnull": True})
        return self.filter(visible)


SiteScopedManager = models.Manager.from_queryset(SiteScopedQuerySet)


def scoped_object_or_404(queryset, user, **lookup):
    """Fetch one object the user's sites may see; anything else is a 404 (no existence leak).
    A malformed id (not a UUID, from a tampered form or address) is a 404 too, not a 500."""
    if isinstance(queryset, type):
        queryset = queryset.objects.all()
    try:
        return queryset.for_user(user).get(**lookup)
    except (queryset.model.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404("Not found at your sites.") from exc


class SiteScopedMixin(LoginRequiredMixin):
    """For generic views: restricts get_queryset() to the user's sites."""

    def get_queryset(self):
        return super().get_queryset().for_user(self.request.user)


def site_staff(*, site, roles: Iterable[str] = ()) -> models.QuerySet:
    """The active users who are members of `site` (a StudySite or its id), holding one of
    `roles` when roles are named. Unordered; a user with two of the roles comes twice (the
    caller orders, and takes `distinct()` when it names roles)."""
    users = get_user_model().objects.filter(is_active=True, site_memberships__site=site)
    if roles:
        users = users.filter(groups__name__in=list(roles))
    return users


def member_site_ids(*, user, roles: Iterable[str] = ()) -> frozenset[int]:
    """The ids of the sites where the user is a member (holding one of `roles`, when named):
    one query. A superuser is a member of the sites he was given, no more."""
    memberships = user.site_memberships.all()
    if roles:
        memberships = memberships.filter(user__groups__name__in=list(roles))
    return frozenset(memberships.values_list("site_id", flat=True))
