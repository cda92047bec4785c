"""Where a write comes from (21 CFR 11.10(h), STANDARDS P11-08): the request being served, if
any, so that the audit trail and the access log can say from which address and browser a change
was made, and who made an access change, without every service taking the request as an
argument.

A ContextVar rather than a thread-local: it is reset when the request ends, and it is right
under threads (runserver, gunicorn threads) and in async code alike."""

import socket
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

_current_request = ContextVar("edc_current_request", default=None)


@dataclass(frozen=True)
class Source:
    ip_address: str | None
    user_agent: str
    # "web" for a browser request; otherwise the host and program (a Celery worker, a
    # management command), so that a change made by a job is told apart from a person's.
    channel: str


def current_request():
    return _current_request.get()


def client_ip(request) -> str | None:
    """The client's address. Behind a reverse proxy (the production stack) REMOTE_ADDR is the
    proxy's: AUDIT_CLIENT_IP_HEADER names the header the proxy sets (X-Forwarded-For), and the
    address the proxy appended last is taken, since earlier ones are what the client claimed."""
    header = getattr(settings, "AUDIT_CLIENT_IP_HEADER", "REMOTE_ADDR")
    value = request.META.get(header) or request.META.get("REMOTE_ADDR") or ""
    address = value.split(",")[-1].strip()
    return address or None


def _process_channel() -> str:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    command = f"{program} {sys.argv[1]}" if len(sys.argv) > 1 else program
    return f"{socket.gethostname()}: {command}"[:200]


def current_source() -> Source:
    request = current_request()
    if request is None:
        return Source(ip_address=None, user_agent="", channel=_process_channel())
    return Source(
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        channel="web",
    )


class RequestSourceMiddleware:
    """Makes the request being served known to the services below it, for its duration."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)
