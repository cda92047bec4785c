"""The failed-login lockout (django-axes, counted by user name), asked and lifted in one place.

Failed logins and failed signature passwords both count; a lockout ends by itself after
AXES_COOLOFF_TIME, or earlier when an administrator lifts it with a reason."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from audit.models import AuthEvent
from audit.signals import log_auth_event


def is_locked_out(request, *, username: str) -> bool:
    """Asked on every signed-in request (core.session_guard): one aggregate query on
    axes_accessattempt (indexed by username), failures within the cool-off."""
    from axes.handlers.proxy import AxesProxyHandler

    return AxesProxyHandler.is_locked(request, credentials={"username": username})


def locked_usernames() -> set[str]:
    """The user names locked out now (one query), for the User access page."""
    from axes.helpers import get_cool_off
    from axes.models import AccessAttempt

    attempts = AccessAttempt.objects.all()
    cool_off = get_cool_off()
    if cool_off is not None:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    return set(
        attempts.values("username")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
        .values_list("username", flat=True)
    )


@transaction.atomic
def lockout_lift(*, request, username: str, reason: str) -> None:
    """An administrator ends a lockout before its cool-off; the reason is kept in an AuthEvent
    (shown with the account's access changes)."""
    from axes.handlers.proxy import AxesProxyHandler

    reason = reason.strip()
    if not reason:
        raise ValidationError("Say why the account is unlocked before the cool-off ends.")
    if username not in locked_usernames():
        raise ValidationError(f"{username} is not locked out.")
    AxesProxyHandler.reset_attempts(username=username)
    log_auth_event(
        kind=AuthEvent.Kind.ACCOUNT_CHANGE,
        username=username,
        user=get_user_model().objects.filter(username=username).first(),
        request=request,
        detail=f"lockout lifted before its cool-off: {reason}",
    )
