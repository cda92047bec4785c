"""Where a change came from (21 CFR 11.10(h), STANDARDS P11-08): the address and browser of the
request on every audit row, the job or command otherwise, and who made an access change."""

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from audit.models import AuditEntry
from core.request_source import client_ip
from patients.models import Examination

from ..factories import post_data, save_crf

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156 ClinicTablet"


def _crf_url(patient, visit, code, seq=1):
    return reverse("patients:crf-edit", args=[patient.uuid, visit.uuid, code, seq])


def test_a_form_saved_in_the_browser_records_the_address_and_the_browser(
    client, consented_patient, screening_visit, andrologist
):
    client.force_login(andrologist)
    response = client.post(
        _crf_url(consented_patient, screening_visit, "examination"),
        post_data("examination"),
        REMOTE_ADDR="10.20.30.40",
        HTTP_USER_AGENT=BROWSER,
    )
    assert response.status_code == 302
    rows = AuditEntry.objects.filter(form_code="examination")
    assert rows.count() > 5
    assert {(r.ip_address, r.user_agent, r.channel) for r in rows} == {
        ("10.20.30.40", BROWSER, "web")
    }
    # The history page shows it, with the browser on hover.
    exam = Examination.objects.get()
    html = client.get(
        reverse("audit:record-history", args=["patients.Examination", exam.uuid])
    ).content.decode()
    assert f'title="{BROWSER}" data-testid="source">10.20.30.40' in html


def test_a_write_outside_a_request_names_the_host_and_program_not_an_address(
    screening_visit, andrologist, client
):
    # A request served earlier does not leak into later writes (the context is reset).
    client.force_login(andrologist)
    client.get("/", REMOTE_ADDR="10.9.9.9")
    exam = save_crf("examination", screening_visit, andrologist)
    rows = AuditEntry.objects.filter(object_id=exam.pk, form_code="examination")
    assert {r.ip_address for r in rows} == {None}
    channels = {r.channel for r in rows}
    assert len(channels) == 1 and ": " in channels.pop()  # "host: pytest ..." here


def test_behind_the_proxy_the_address_the_proxy_appended_is_taken(settings):
    settings.AUDIT_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    request = RequestFactory().get(
        "/", REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 41.33.10.2"
    )
    assert client_ip(request) == "41.33.10.2"  # not the address the client claimed first
    direct = RequestFactory().get("/", REMOTE_ADDR="172.18.0.5")
    assert client_ip(direct) == "172.18.0.5"  # header absent: the peer's address
    settings.AUDIT_CLIENT_IP_HEADER = "REMOTE_ADDR"
    assert client_ip(request) == "172.18.0.5"


def test_the_audit_csv_carries_the_source(
    client, monitor, andrologist, consented_patient, screening_visit
):
    client.force_login(andrologist)
    client.post(
        _crf_url(consented_patient, screening_visit, "examination"),
        post_data("examination"),
        REMOTE_ADDR="10.20.30.40",
        HTTP_USER_AGENT=BROWSER,
    )
    client.force_login(monitor)
    response = client.get(reverse("audit:trail"), {"format": "csv", "form_code": "examination"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows and list(rows[0])[-3:] == ["ip_address", "user_agent", "channel"]
    assert {(r["ip_address"], r["user_agent"], r["channel"]) for r in rows} == {
        ("10.20.30.40", BROWSER, "web")
    }


@pytest.mark.postgres
def test_a_change_made_in_sql_names_the_database_client(screening_visit, andrologist):
    exam = save_crf("examination", screening_visit, andrologist)
    with connection.cursor() as cursor:
        cursor.execute("SET application_name = 'psql'")
        cursor.execute("UPDATE patients_examination SET weight_kg = 71 WHERE id = %s", [exam.pk])
        cursor.execute("RESET application_name")
    row = AuditEntry.objects.get(object_id=exam.pk, user__isnull=True, field_name="weight_kg")
    assert row.new_value in ("71", "71.0") and row.old_value == str(Decimal("80.0"))
    assert row.channel == "database: psql"
    assert row.ip_address == "127.0.0.1"  # CI connects over TCP to 127.0.0.1
