"""/healthz: what docker-compose's web healthcheck asks. No login; 200 "ok" only when the
database answers, 503 otherwise; no session, no database write."""

from unittest import mock

from django.contrib.sessions.models import Session
from django.db import OperationalError, connection
from django.urls import reverse


def test_it_answers_ok_without_a_login_when_the_database_answers(client, db):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response["Cache-Control"]
    assert "sessionid" not in response.cookies and not Session.objects.exists()


def test_it_answers_503_when_the_database_does_not(client, db):
    # Every connection attempt fails, as when PostgreSQL is down (ATOMIC_REQUESTS would too).
    refused = OperationalError("connection refused")
    with mock.patch.object(connection, "ensure_connection", side_effect=refused):
        response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.content == b"database unavailable"


def test_the_compose_healthcheck_request_passes_the_production_host_and_https_rules(
    client, db, settings
):
    """docker-compose.yml's web healthcheck calls http://127.0.0.1:8000/healthz with the first
    ALLOWED_HOSTS name as Host and X-Forwarded-Proto: https, as the TLS proxy would, so neither
    the host check nor SECURE_SSL_REDIRECT turns it away."""
    settings.ALLOWED_HOSTS = ["edc.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = client.get(reverse("healthz"), headers={"host": "edc.example.org"})
    assert plain.status_code == 301  # what a check without the header would get
    response = client.get(
        reverse("healthz"), headers={"host": "edc.example.org", "x-forwarded-proto": "https"}
    )
    assert response.status_code == 200 and response.content == b"ok"
