"""The database gone away (issue 10, fault 10): a save answers a styled 503 page that says
nothing was saved, never a bare 500; and after a restart a kept connection is tested before
use, so gunicorn's workers do not answer one more 500 each."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import timedelta

import psycopg2
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from patients.models import Patient

from ..faults import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@contextmanager
def database_unreachable():
    """Point this process's connection at a port where nothing listens: every connection
    attempt is refused for real, as when PostgreSQL is down."""
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(free_port())
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved


def test_a_save_with_the_database_down_answers_503_saying_nothing_was_saved(andrologist):
    client = Client(raise_request_exception=False)
    client.force_login(andrologist)
    data = {
        "site": andrologist.site_memberships.get().site_id,
        "enrolment_date": timezone.localdate().isoformat(),
        "date_of_birth": (timezone.localdate() - timedelta(days=365 * 30)).isoformat(),
        "full_name": "Karim Typed",
    }
    with database_unreachable():
        response = client.post(reverse("patients:patient-enrol"), data)
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    html = response.content.decode()
    assert "The database is not reachable right now" in html
    assert "Nothing from this page was saved" in html
    assert "Back" in html  # the browser's Back keeps what was typed
    assert not Patient.objects.exists()
    # Once it is back, the same form goes through.
    client.post(reverse("patients:patient-enrol"), data)
    assert Patient.objects.count() == 1


def test_another_error_still_answers_500_with_the_plain_page(andrologist, rf):
    from core.views import server_error

    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def _get(url) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_after_a_database_restart_the_first_request_of_a_gunicorn_worker_succeeds():
    """Production keeps connections (CONN_MAX_AGE). When PostgreSQL restarts, each kept
    connection is dead: with CONN_HEALTH_CHECKS the next request reconnects."""
    port = free_port()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "CONN_MAX_AGE": "600",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    server = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}{reverse('healthz')}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status = _get(url)
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert status == 200
        # What a restart does to the worker's kept connection: its backend is gone.
        connection.ensure_connection()
        with psycopg2.connect(
            host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres"
        ) as admin:
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() AND pid <> %s",
                    [db["NAME"], connection.connection.get_backend_pid()],
                )
                assert cursor.rowcount >= 1  # gunicorn's kept connection was there
        assert _get(url) == 200
        assert _get(url) == 200
    finally:
        server.terminate()
        server.wait(10)
