"""The failed-login lockout (django-axes, counted by user name), asked, reported and lifted in
one place.

Failed logins and failed signature passwords both count; a lockout ends by itself after
AXES_COOLOFF_TIME, or earlier when an administrator lifts it with a reason. The administrators
are e-mailed when an account locks (21 CFR 11.300(d)), by a Celery task queued when the
request's transaction commits: the login request that locks the account does not wait for
the mail server."""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from audit.models import AuthEvent
from audit.services import auth_event_log

logger = logging.getLogger(__name__)

# What handing a task to the broker raises when Redis is down or does not answer.
BROKER_UNREACHABLE = (BrokerOperationalError, RedisConnectionError, RedisTimeoutError, OSError)


def is_locked_out(request, *, username: str) -> bool:
    """Asked on every signed-in request (accounts.session_guard): one aggregate query on
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
    auth_event_log(
        kind=AuthEvent.Kind.ACCOUNT_CHANGE,
        username=username,
        user=get_user_model().objects.filter(username=username).first(),
        request=request,
        detail=f"lockout lifted before its cool-off: {reason}",
    )


# ---- the administrators' alert ---------------------------------------------------------------


def lockout_alert_send(*, username: str, ip_address: str) -> int:
    """21 CFR 11.300(d): attempted unauthorised use is reported at once to the administrators
    (the active users in the Admin group with an e-mail address). Returns the number of
    messages sent (0 or 1)."""
    recipients = list(
        get_user_model()
        .objects.filter(groups__name="Admin", is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not recipients:
        return 0
    return send_mail(
        f"EDC account locked: {username}",
        f"The account '{username}' was locked after repeated failed logins or signatures "
        f"(last attempt from {ip_address}). The lock ends by itself after "
        f"{settings.AXES_COOLOFF_MINUTES} minutes; to unlock earlier, once you have checked with "
        "the user, use User access > Unlock now (a reason is asked and kept).",
        None,
        recipients,
        fail_silently=True,
    )


def lockout_alert_queue(*, username: str, ip_address: str) -> None:
    """Send the alert from a worker once the lockout is committed. When the broker cannot
    take the task, the alert is sent here instead: late is better than never."""

    def queue():
        from .tasks import send_lockout_alert

        try:
            send_lockout_alert.delay(username=username, ip_address=ip_address)
        except BROKER_UNREACHABLE:
            logger.warning(
                "Lockout alert for %s not queued (broker unreachable): sent now", username
            )
            lockout_alert_send(username=username, ip_address=ip_address)

    transaction.on_commit(queue)
