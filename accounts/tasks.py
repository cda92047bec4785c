"""Background jobs of sign-in. Thin: take the arguments, call the service."""

from celery import shared_task

from .lockout import lockout_alert_send


@shared_task
def send_lockout_alert(*, username: str, ip_address: str) -> int:
    """E-mail the administrators that an account is locked (accounts.lockout)."""
    return lockout_alert_send(username=username, ip_address=ip_address)
