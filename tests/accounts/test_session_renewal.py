"""The idle timeout renewed once a minute instead of by a write on every request (issue 12):
a request soon after the last renewal writes nothing to the session table; one after it pushes
the expiry ahead; an idle session still ends within the timeout, and an active one does not."""

from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.session_guard import RENEW_EVERY_SECONDS


def _session_writes(ctx) -> int:
    return sum(
        1
        for q in ctx.captured_queries
        if "django_session" in q["sql"] and not q["sql"].lstrip().upper().startswith("SELECT")
    )


def _expiry():
    return Session.objects.get().expire_date


def test_a_request_soon_after_the_last_renewal_writes_no_session(client, andrologist):
    client.force_login(andrologist)
    assert client.get(reverse("patients:patient-list")).status_code == 200  # renews
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("patients:patient-list")).status_code == 200
    assert _session_writes(ctx) == 0


def test_a_request_after_a_minute_pushes_the_expiry_ahead(client, andrologist, time_machine):
    client.force_login(andrologist)
    client.get(reverse("patients:patient-list"))
    first = _expiry()
    time_machine.shift(timedelta(seconds=RENEW_EVERY_SECONDS + 1))
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("patients:patient-list")).status_code == 200
    assert _session_writes(ctx) == 1
    assert _expiry() >= first + timedelta(seconds=RENEW_EVERY_SECONDS)


def test_an_active_user_stays_signed_in_past_the_timeout(client, andrologist, time_machine):
    """A request every 10 minutes for an hour: each renews in time."""
    client.force_login(andrologist)
    for _ in range(6):
        time_machine.shift(timedelta(minutes=10))
        assert client.get(reverse("patients:patient-list")).status_code == 200


def test_an_idle_session_ends_within_the_timeout(client, andrologist, time_machine):
    client.force_login(andrologist)
    client.get(reverse("patients:patient-list"))
    # Requests within the minute renew nothing...
    time_machine.shift(timedelta(seconds=RENEW_EVERY_SECONDS - 5))
    client.get(reverse("patients:patient-list"))
    # ...so the session ends at most SESSION_COOKIE_AGE after the last request, never later.
    time_machine.shift(timedelta(seconds=settings.SESSION_COOKIE_AGE))
    response = client.get(reverse("patients:patient-list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_signing_out_is_not_undone_by_the_renewal(client, andrologist):
    client.force_login(andrologist)
    client.get(reverse("patients:patient-list"))
    client.post(reverse("logout"))
    signed_in = [s for s in Session.objects.all() if "_auth_user_id" in s.get_decoded()]
    assert signed_in == []
    response = client.get(reverse("patients:patient-list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
