"""The one access mechanism: every patient-scoped query goes through `for_user`.

A model opts in by using `SiteScopedQuerySet` as its manager and naming the path to its
`trial.StudySite` in `site_lookup` ("" for StudySite itself). Views use `SiteScopedMixin`
(class-based) or `scoped_object_or_404` (function views); nothing filters by site by hand.
"""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db import models
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
        return self.filter(**{f"{prefix}memberships__user": user})


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
