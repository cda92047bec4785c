"""Issue 11, findings 3 and 4: the failed-login lockout cannot be turned against another
account, it ends after a cool-off (or earlier, by an admin with a reason), and a locked or
deactivated account's open sessions end on their next request."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuthEvent
from monitoring.models import Signature

from ..conftest import sign_in

PASSWORD = "correct-horse-battery"


def _sign_url(patient, visit):
    return reverse("monitoring:sign-visit", args=[patient.uuid, visit.uuid])


def _can_log_in(username: str) -> bool:
    client = Client()
    sign_in(client, username, PASSWORD)  # password, then the authenticator's code
    return client.get(reverse("home")).status_code == 200


def _fail_logins(username: str, times: int) -> None:
    client = Client()
    for _ in range(times):
        client.post(reverse("login"), {"username": username, "password": "wrong"})


def test_signatures_naming_the_admin_lock_the_signer_not_the_admin(
    client, consented_patient, screening_visit, andrologist, admin_user, settings
):
    client.force_login(andrologist)
    url = _sign_url(consented_patient, screening_visit)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"username": "adam", "password": "guess", "meaning": "approval"})
    assert _can_log_in("adam")
    assert not _can_log_in("alice")
    failed = AuthEvent.objects.filter(kind=AuthEvent.Kind.SIGNATURE_FAILED)
    assert failed.count() == settings.AXES_FAILURE_LIMIT
    assert set(failed.values_list("username", flat=True)) == {"alice"}
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.LOCKOUT, username="alice").exists()
    assert not AuthEvent.objects.filter(
        username="adam", kind__in=["login_failed", "signature_failed", "lockout"]
    ).exists()


def test_a_signature_with_another_users_name_is_refused_even_with_their_password(
    client, consented_patient, screening_visit, andrologist, admin_user
):
    client.force_login(andrologist)
    response = client.post(
        _sign_url(consented_patient, screening_visit),
        {"username": "adam", "password": PASSWORD, "meaning": "approval", "agree": "on"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Sign with your own user name (alice)" in html
    assert not Signature.objects.exists()
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.SIGNATURE_FAILED)
    assert event.username == "alice" and "adam" in event.detail


def test_a_lockout_ends_after_the_cool_off_and_not_before(andrologist, settings, time_machine):
    assert timedelta(minutes=30) == settings.AXES_COOLOFF_TIME
    start = timezone.now()
    _fail_logins("alice", settings.AXES_FAILURE_LIMIT)
    assert not _can_log_in("alice")
    time_machine.move_to(start + timedelta(minutes=29), tick=False)
    assert not _can_log_in("alice")
    time_machine.move_to(start + timedelta(minutes=31), tick=False)
    assert _can_log_in("alice")


def test_an_admin_unlock_needs_a_reason_ends_the_lockout_and_is_recorded(
    client, andrologist, admin_user, settings
):
    _fail_logins("alice", settings.AXES_FAILURE_LIMIT)
    client.force_login(admin_user)
    page = client.get(reverse("monitoring:user-access")).content.decode()
    assert 'data-testid="locked-alice"' in page
    url = reverse("monitoring:user-unlock", args=["alice"])
    response = client.post(url, {"reason": "  "}, follow=True)
    assert "Say why" in response.content.decode()
    assert not _can_log_in("alice")
    response = client.post(url, {"reason": "Phoned alice, she mistyped"}, follow=True)
    assert "alice can sign in again" in response.content.decode()
    assert 'data-testid="locked-alice"' not in response.content.decode()
    assert _can_log_in("alice")
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.ACCOUNT_CHANGE, username="alice")
    assert "Phoned alice, she mistyped" in event.detail and event.actor_name == "adam"
    assert event.user == andrologist


def test_only_an_admin_can_unlock(client, andrologist, monitor, settings):
    _fail_logins("alice", settings.AXES_FAILURE_LIMIT)
    client.force_login(monitor)
    response = client.post(reverse("monitoring:user-unlock", args=["alice"]), {"reason": "x"})
    assert response.status_code == 403
    assert not _can_log_in("alice")


def test_a_locked_users_open_session_ends_on_its_next_request(client, andrologist, settings):
    client.force_login(andrologist)
    assert client.get(reverse("home")).status_code == 200
    _fail_logins("alice", settings.AXES_FAILURE_LIMIT)  # someone else, elsewhere
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    page = client.get(response["Location"]).content.decode()
    assert "account is locked" in page
    assert client.get(reverse("home")).status_code == 302  # the session is gone
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.LOGOUT, username="alice").exists()


def test_a_deactivated_users_open_session_ends_on_its_next_request(client, andrologist):
    client.force_login(andrologist)
    assert client.get(reverse("home")).status_code == 200
    andrologist.is_active = False
    andrologist.save()
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    andrologist.is_active = True
    andrologist.save()
    assert client.get(reverse("home")).status_code == 302  # the old session stays ended


@pytest.mark.postgres
def test_the_session_check_costs_one_query_per_request(client, andrologist):
    client.force_login(andrologist)
    client.get(reverse("home"))
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("home"))
    axes = [q["sql"] for q in queries.captured_queries if "axes_accessattempt" in q["sql"]]
    assert len(axes) == 1
