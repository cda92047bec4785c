"""With two-factor sign-in switched off (a demo), the password completes the sign-in; a locked
account is reported to the administrators (accounts.lockout)."""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from .lockout import lockout_alert_queue
from .services import sign_in_complete
from .session_guard import mark_renewed


@receiver(user_logged_in, dispatch_uid="accounts_password_only_sign_in")
def _password_only_sign_in(sender, request, user, **kwargs):
    if not settings.EDC_REQUIRE_2FA:
        sign_in_complete(username=user.get_username())


@receiver(user_logged_in, dispatch_uid="accounts_session_renewed_at_sign_in")
def _session_renewed_at_sign_in(sender, request, user, **kwargs):
    # The sign-in saves the session with a fresh expiry: the next minute's requests need not.
    if request is not None and hasattr(request, "session"):
        mark_renewed(request.session)


def _locked_out(sender, request, username, ip_address, **kwargs):
    # audit.signals records the lockout (an AuthEvent) from the same signal.
    lockout_alert_queue(username=username or "", ip_address=ip_address)


def connect_axes():
    from axes.signals import user_locked_out

    user_locked_out.connect(_locked_out, dispatch_uid="accounts_lockout_alert")
