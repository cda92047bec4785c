from django_otp.plugins.otp_totp.models import TOTPDevice


def users_with_authenticator() -> set[int]:
    """Ids of the users with a confirmed authenticator (one query), for User access."""
    return set(TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True))
