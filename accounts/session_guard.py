"""Ends a session whose user may no longer use the application (issue 11, finding 4)."""

from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.shortcuts import redirect
from django.utils import timezone

from .lockout import is_locked_out

LOCKED = (
    "Your account is locked after repeated failed sign-in or signature attempts, so you "
    "have been signed out. Try again later or ask an administrator to unlock it."
)
INACTIVE = "Your account is no longer active, so you have been signed out."


class SessionGuardMiddleware:
    """A locked-out (django-axes) or deactivated user's open sessions end on their next
    request, with a message on the login page.

    Cost: one aggregate query on axes_accessattempt per signed-in request; nothing for
    anonymous requests. The user and session are the ones authentication loads anyway."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            if not user.is_active:
                return self._end(request, INACTIVE)
            if is_locked_out(request, username=user.get_username()):
                return self._end(request, LOCKED)
        elif SESSION_KEY in request.session:
            # The session names a user the backends no longer return: ModelBackend refuses
            # a deactivated account. End the session so that reactivation does not revive it.
            return self._end(request, INACTIVE)
        return self.get_response(request)

    @staticmethod
    def _end(request, message: str):
        logout(request)
        messages.error(request, message)
        return redirect("login")


# The idle timeout is renewed at most this often: a request within it leaves the session row
# alone (no UPDATE, no transaction), one after it pushes the expiry SESSION_COOKIE_AGE ahead.
RENEW_EVERY_SECONDS = 60
RENEWED_AT = "_edc_renewed_at"


def mark_renewed(session) -> None:
    """The session's expiry is being renewed now (it is saved with this change)."""
    session[RENEWED_AT] = int(timezone.now().timestamp())


class SessionRenewalMiddleware:
    """The idle timeout (SESSION_COOKIE_AGE) without a write on every request: instead of
    SESSION_SAVE_EVERY_REQUEST, a signed-in session is saved (its expiry renewed) when
    RENEW_EVERY_SECONDS have passed since it was last renewed, or when it changed anyway.
    A session therefore ends after between SESSION_COOKIE_AGE - RENEW_EVERY_SECONDS and
    SESSION_COOKIE_AGE of inactivity: never later than the timeout. Below SessionMiddleware,
    so the session it marks is the one SessionMiddleware then saves."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or session.is_empty() or SESSION_KEY not in session:
            return response  # nothing to keep alive (anonymous, or just signed out)
        since = int(timezone.now().timestamp()) - session.get(RENEWED_AT, -RENEW_EVERY_SECONDS)
        # Renewed when it is saved anyway, when a minute has passed, or when the clock went
        # back (a negative age): never kept alive by a stale or tampered-with mark.
        if session.modified or not 0 <= since < RENEW_EVERY_SECONDS:
            mark_renewed(session)
        return response
