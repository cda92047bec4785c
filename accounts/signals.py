"""With two-factor sign-in switched off (a demo), the password completes the sign-in."""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from .services import sign_in_complete


@receiver(user_logged_in, dispatch_uid="accounts_password_only_sign_in")
def _password_only_sign_in(sender, request, user, **kwargs):
    if not settings.EDC_REQUIRE_2FA:
        sign_in_complete(username=user.get_username())
