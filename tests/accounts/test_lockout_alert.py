"""The administrators' e-mail when an account locks (21 CFR 11.300(d)) is sent by a Celery task
queued when the login request commits, not by the login request itself."""

from django.core import mail
from django.urls import reverse
from kombu.exceptions import OperationalError

from accounts import tasks
from accounts.lockout import lockout_alert_send
from audit.models import AuthEvent

from ..conftest import make_user
from ..exports.conftest import celery_conf


def _lock_alice(client, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"})


def test_the_request_that_locks_an_account_sends_no_mail_and_queues_the_alert(
    client, andrologist, admin_user, settings, django_capture_on_commit_callbacks
):
    admin_user.email = "admin@example.org"
    admin_user.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _lock_alice(client, settings)
    assert AuthEvent.objects.filter(kind="lockout", username="alice").exists()
    assert mail.outbox == []
    # After the commit, the task sends it.
    with celery_conf(task_always_eager=True):
        for callback in callbacks:
            callback()
    assert [m.to for m in mail.outbox] == [["admin@example.org"]]
    assert mail.outbox[0].subject == "EDC account locked: alice"


def test_the_task_emails_the_active_administrators_only(andrologist, admin_user, site):
    admin_user.email = "admin@example.org"
    admin_user.save()
    make_user("ada", "Admin", site, email="ada@example.org", is_active=False)
    make_user("al", "Admin", site)  # no address
    assert (
        tasks.send_lockout_alert.apply(kwargs={"username": "alice", "ip_address": "10.0.0.7"}).get()
        == 1
    )
    (alert,) = mail.outbox
    assert alert.to == ["admin@example.org"]
    assert "(last attempt from 10.0.0.7)" in alert.body
    assert "ends by itself after 30 minutes" in alert.body and "Unlock now" in alert.body


def test_no_administrator_with_an_address_sends_nothing(andrologist):
    assert lockout_alert_send(username="alice", ip_address="10.0.0.7") == 0
    assert mail.outbox == []


def test_the_alert_is_sent_at_once_when_the_broker_cannot_take_the_task(
    client, andrologist, admin_user, settings, django_capture_on_commit_callbacks, monkeypatch
):
    admin_user.email = "admin@example.org"
    admin_user.save()

    def broker_down(**kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.send_lockout_alert, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        _lock_alice(client, settings)
    assert [m.to for m in mail.outbox] == [["admin@example.org"]]
