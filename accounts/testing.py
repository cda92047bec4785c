"""For the tests and bench/pages.py only (never imported by the application): a session that
counts as a full sign-in, and the code an authenticator app would show."""

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from .services import authenticator_of, usable_code  # noqa: F401  (for the tests)

TEST_AUTHENTICATOR_NAME = "Test authenticator"


def authenticator_for_tests(user) -> TOTPDevice:
    """The user's confirmed authenticator, made if they have none."""
    return authenticator_of(user=user) or TOTPDevice.objects.create(
        user=user, name=TEST_AUTHENTICATOR_NAME, confirmed=True
    )


def mark_verified(client, user) -> TOTPDevice:
    """After client.force_login(user): the session is verified with the user's authenticator,
    as django_otp.login() leaves it after a good code."""
    device = authenticator_for_tests(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device
