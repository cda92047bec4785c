"""The results computed by a job and kept per data version (issue 12): a stored computation
is shown while no write happened (few queries); any clinical write (a CRF saved through the
services, a raw SQL update caught by the audit trigger, a void) makes it old; one computation
per scope however often it is asked for; a killed worker's claim is taken over; a user sees
only a computation of exactly their scope; the page states when and from which version."""

import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import dateformat, timezone

from audit.version import data_version
from labs.models import HormoneProfile, SemenAnalysis
from patients.services import crf_void
from reports import services, snapshots
from reports.models import ResultsSnapshot
from reports.selectors import computed_results, results_scope, study_results

from .factories import follow_up, treated

RESULTS = "reports:results"


@pytest.fixture
def study(site, andrologist):
    """At BEN: one responder, one non-responder."""
    r = treated(site, andrologist, age=30)
    follow_up(r, andrologist, sperm="PELLET", hormones=("16", "8", "3.9"))
    n = treated(site, andrologist, age=41)
    follow_up(n, andrologist, hormones=("29", "12", "2.9"))
    return {"responder": r, "non_responder": n}


def get(client, user, **params):
    if client.session.get("_auth_user_id") != str(user.pk):
        client.force_login(user)
    response = client.get(reverse(RESULTS), params)
    assert response.status_code == 200
    return response, response.content.decode()


def headline(html: str) -> str | None:
    match = re.search(r'data-testid="headline">([^<]*)<', html)
    return match.group(1) if match else None


def shown_version(html: str) -> int:
    return int(re.search(r'data-testid="data-version">(\d+)<', html).group(1))


# ---- the data version ------------------------------------------------------------------------


def test_the_data_version_moves_with_every_audited_change_and_only_then(study, andrologist):
    before = data_version()
    assert before == data_version()  # reading it changes nothing
    follow_up(study["non_responder"], andrologist, "M6")
    assert data_version() > before


@pytest.mark.postgres
def test_a_raw_sql_update_moves_the_data_version_through_the_audit_trigger(study):
    record = HormoneProfile.objects.filter(visit__patient=study["responder"]).first()
    before = data_version()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE labs_hormoneprofile SET fsh = 99 WHERE id = %s", [record.pk])
    assert data_version() > before


@pytest.mark.postgres
def test_the_data_version_is_one_query_on_the_chain_heads(db):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN SELECT COALESCE(SUM(seq), 0) FROM audit_chainhead")
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "audit_chainhead" in plan and "audit_auditentry" not in plan


# ---- reused while nothing changed ------------------------------------------------------------


def test_a_computation_is_reused_while_no_write_happened(
    client, andrologist, study, django_assert_max_num_queries
):
    response, html = get(client, andrologist)  # eager: computed inside this request
    assert headline(html) == "1/2 = 50.0%"
    assert ResultsSnapshot.objects.get().status == ResultsSnapshot.Status.DONE
    # The page states when and from which data version the numbers were computed.
    assert shown_version(html) == data_version()
    assert "(the current data)" in html
    # The pinned clock (whichever instant the run pins), in Cairo time.
    computed = dateformat.format(timezone.localtime(timezone.now()), "d M Y H:i T")
    assert f"Computed {computed}" in html
    assert 'data-testid="recompute-button"' in html
    # Again: the stored results, no computation. 10 statements: the results' own two (the
    # user's sites, the stored computation read with the data version now) and what every
    # signed-in page runs (session, user, verified device, lockout, role, the menu's sites,
    # the session's save); plus, under the test's transaction only, savepoints.
    with django_assert_max_num_queries(14), CaptureQueriesContext(connection) as warm:
        response, again = get(client, andrologist)
    statements = [
        q["sql"] for q in warm.captured_queries if "SAVEPOINT" not in q["sql"].split(" ", 2)[:2]
    ]
    assert len(statements) <= 10, [q[:60] for q in statements]
    assert headline(again) == "1/2 = 50.0%"
    assert ResultsSnapshot.objects.count() == 1
    assert "Refresh" not in response


def test_the_warm_page_does_not_grow_with_the_patients(
    client, site, andrologist, study, django_assert_max_num_queries
):
    get(client, andrologist)
    with CaptureQueriesContext(connection) as few:
        get(client, andrologist)
    for sperm in ("FRESH", "NONE", "PELLET"):
        follow_up(treated(site, andrologist), andrologist, sperm=sperm)
    get(client, andrologist)  # recomputed once (eager)
    with django_assert_max_num_queries(14), CaptureQueriesContext(connection) as more:
        _, html = get(client, andrologist)
    assert headline(html) == "3/5 = 60.0%"
    assert len(more) == len(few)


# ---- made old by any clinical write ----------------------------------------------------------


@pytest.mark.parametrize("how", ["crf_save", "void", "raw_sql"])
def test_a_write_makes_the_stored_results_old_and_asks_for_one_computation(
    client, andrologist, study, how, results_queued, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(services, "_send", lambda *, snapshot_id: sent.append(snapshot_id))
    first_row = ResultsSnapshot.objects.create(
        scope_key=results_scope(user=andrologist).key,
        site_ids=results_scope(user=andrologist).site_ids,
        requested_at=timezone.now(),
        requested_version=data_version(),
    )
    assert services.compute_snapshot(snapshot_id=first_row.pk) == services.Outcome.DONE
    first = ResultsSnapshot.objects.get().data_version
    _, html = get(client, andrologist)
    assert shown_version(html) == first and "(the current data)" in html
    if how == "crf_save":
        follow_up(study["non_responder"], andrologist, "M6", sperm="FRESH")
    elif how == "void":
        analysis = SemenAnalysis.objects.get(visit__patient=study["responder"])
        crf_void(record=analysis, user=andrologist, reason="Entered on the wrong patient")
    else:
        if connection.vendor != "postgresql":
            pytest.skip("the capture triggers are PostgreSQL's")
        record = HormoneProfile.objects.filter(visit__patient=study["responder"]).last()
        with connection.cursor() as cursor:
            cursor.execute("UPDATE labs_hormoneprofile SET fsh = 99 WHERE id = %s", [record.pk])
    assert data_version() > first
    with django_capture_on_commit_callbacks(execute=True):
        _, html = get(client, andrologist)
        _, html_again = get(client, andrologist)  # a second view asks for nothing more
    # The old numbers, with the banner, while one computation is queued.
    assert headline(html) == "1/2 = 50.0%"
    assert 'data-testid="stale-banner"' in html and "recomputing" in html
    assert shown_version(html) == first
    assert f"now version {data_version()}" in html
    queued = ResultsSnapshot.objects.get(status=ResultsSnapshot.Status.QUEUED)
    assert sent == [queued.pk]
    assert 'data-testid="stale-banner"' in html_again
    # The worker computes it: the page is current again, with the new numbers.
    assert services.compute_snapshot(snapshot_id=queued.pk) == services.Outcome.DONE
    _, html = get(client, andrologist)
    assert shown_version(html) == data_version() and "(the current data)" in html
    expected = {"crf_save": "2/2 = 100.0%", "void": "0/1 = 0.0%", "raw_sql": "1/2 = 50.0%"}
    assert headline(html) == expected[how]


# ---- one computation per scope ---------------------------------------------------------------


def test_two_requests_make_one_computation_and_a_second_message_does_nothing(
    andrologist, monitor, study, results_queued, monkeypatch
):
    monkeypatch.setattr(services, "_send", lambda *, snapshot_id: True)
    scope = results_scope(user=andrologist)
    version = data_version()
    first, created = services.request_computation(scope=scope, user=andrologist, version=version)
    again, created_again = services.request_computation(
        scope=scope, user=andrologist, version=version
    )
    assert created and not created_again and again.pk == first.pk
    assert services.compute_snapshot(snapshot_id=first.pk) == services.Outcome.DONE
    assert services.compute_snapshot(snapshot_id=first.pk) == services.Outcome.BUSY
    row = ResultsSnapshot.objects.get()
    assert row.attempts == 1 and row.data_version == version and row.duration_ms is not None
    assert row.payload_format == snapshots.FORMAT and row.computed_by


def test_a_killed_workers_claim_is_taken_over_once_stale(
    andrologist, study, results_queued, monkeypatch, time_machine
):
    monkeypatch.setattr(services, "_send", lambda *, snapshot_id: True)
    scope = results_scope(user=andrologist)
    row, _ = services.request_computation(scope=scope, user=andrologist, version=data_version())
    # A worker claimed it and died (no result written).
    assert services.RESULTS_CLAIM.claim(
        pk=row.pk, now=timezone.now(), attempts=1, claimed_at=timezone.now()
    )
    assert services.compute_snapshot(snapshot_id=row.pk) == services.Outcome.BUSY  # still fresh
    time_machine.move_to(timezone.now() + services.stale_after() + timedelta(seconds=5))
    # The page sends it again, once.
    sent = []
    monkeypatch.setattr(services, "_send", lambda *, snapshot_id: sent.append(snapshot_id))
    services.request_computation(scope=scope, user=andrologist, version=data_version())
    assert services.compute_snapshot(snapshot_id=row.pk) == services.Outcome.DONE
    row.refresh_from_db()
    assert row.attempts == 2 and row.status == ResultsSnapshot.Status.DONE


def test_a_lost_message_is_sent_again_by_the_next_page_view_once(
    andrologist,
    study,
    results_queued,
    monkeypatch,
    time_machine,
    django_capture_on_commit_callbacks,
):
    sent = []
    monkeypatch.setattr(services, "_send", lambda *, snapshot_id: sent.append(snapshot_id))
    scope = results_scope(user=andrologist)
    with django_capture_on_commit_callbacks(execute=True):
        row, _ = services.request_computation(scope=scope, user=andrologist, version=1)
        services.request_computation(scope=scope, user=andrologist, version=1)
    assert sent == [row.pk]
    time_machine.move_to(timezone.now() + services.RESEND_AFTER + timedelta(seconds=5))
    with django_capture_on_commit_callbacks(execute=True):
        services.request_computation(scope=scope, user=andrologist, version=1)
        services.request_computation(scope=scope, user=andrologist, version=1)
    assert sent == [row.pk, row.pk]


# ---- scope -----------------------------------------------------------------------------------


def test_a_user_sees_only_a_computation_of_exactly_their_scope(
    client, site, other_site, andrologist, other_andrologist, monitor, study
):
    other = treated(other_site, other_andrologist)
    follow_up(other, other_andrologist, sperm="FRESH")
    _, study_wide = get(client, monitor)
    assert headline(study_wide) == "2/3 = 66.7%"
    # The andrologist of BEN: not the monitor's study-wide numbers, his site's.
    _, own = get(client, andrologist)
    assert headline(own) == "1/2 = 50.0%"
    # The monitor filtering BEN: the same patients, its own computation (scope + filter).
    _, filtered = get(client, monitor, site=site.code)
    assert headline(filtered) == "1/2 = 50.0%"
    keys = sorted(ResultsSnapshot.objects.values_list("scope_key", flat=True))
    both = ",".join(str(pk) for pk in sorted([site.pk, other_site.pk]))
    assert keys == sorted(
        [f"sites:{both}", f"sites:{site.pk}", f"sites:{site.pk};filter:{site.pk}"]
    )
    # A stored study-wide computation is never read for a one-site user.
    assert services.newest_done(scope_key=results_scope(user=andrologist).key).site_ids == [site.pk]


# ---- recompute now, computing, eager -----------------------------------------------------------


def test_recompute_now_asks_for_a_computation_of_the_users_scope(client, monitor, site, study):
    get(client, monitor, site=site.code)
    first = ResultsSnapshot.objects.get()
    response = client.post(reverse("reports:results-recompute"), {"site": site.code})
    assert response.status_code == 302
    assert response["Location"] == reverse(RESULTS) + f"?site={site.code}"
    # Eager: computed again at once; the store keeps the newest computation of the scope.
    again = ResultsSnapshot.objects.get()
    assert again.pk != first.pk and again.status == "done"
    assert again.requested_by == monitor and again.site == site
    assert again.data_version == first.data_version
    _, html = get(client, monitor, site=site.code)
    assert "being recomputed" in html  # the message after the redirect
    assert client.get(reverse("reports:results-recompute")).status_code == 405


def test_a_coordinator_cannot_recompute(client, coordinator):
    client.force_login(coordinator)
    assert client.post(reverse("reports:results-recompute")).status_code == 403
    assert not ResultsSnapshot.objects.exists()


def test_without_any_computation_the_page_says_computing_and_reloads(
    client, andrologist, study, results_queued, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(services, "_send", lambda *, snapshot_id: sent.append(snapshot_id))
    with django_capture_on_commit_callbacks(execute=True):
        response, html = get(client, andrologist)
    assert 'data-testid="computing"' in html and headline(html) is None
    assert response["Refresh"] == "5"
    assert len(sent) == 1


def test_when_the_computation_failed_the_page_says_so(
    client, andrologist, study, results_queued, monkeypatch
):
    monkeypatch.setattr(services, "_send", lambda *, snapshot_id: True)
    row, _ = services.request_computation(
        scope=results_scope(user=andrologist), user=andrologist, version=data_version()
    )

    def broken(**kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(services, "computed_results", broken)
    assert services.compute_snapshot(snapshot_id=row.pk) == services.Outcome.FAILED
    row.refresh_from_db()
    assert row.status == "failed" and "ZeroDivisionError" in row.error
    monkeypatch.setattr(services, "_send", lambda *, snapshot_id: True)
    _, html = get(client, andrologist)  # asks again (a new row); meanwhile: computing
    assert 'data-testid="computing"' in html
    assert ResultsSnapshot.objects.filter(status="queued").count() == 1


def test_in_eager_mode_the_first_view_shows_fresh_results(client, andrologist, study):
    _, html = get(client, andrologist)
    assert headline(html) == "1/2 = 50.0%" and 'data-testid="computing"' not in html
    assert ResultsSnapshot.objects.get().status == "done"


# ---- the payload -------------------------------------------------------------------------------


def test_the_payload_loads_back_to_the_same_tables_and_charts(site, andrologist, study):
    computed = computed_results(site_ids=[site.pk])
    loaded = snapshots.load(snapshots.dump(**computed))
    assert loaded["tables"] == computed["tables"]
    assert [c.svg for c in loaded["charts"]] == [str(c.svg) for c in computed["charts"]]
    assert loaded["enrolled"] == computed["enrolled"] == 2


def test_non_finite_numbers_are_stored_as_text_and_read_back():
    from reports.statistics import Summary

    assert snapshots._summary_in(snapshots._summary_out(Summary(2, float("inf"), None))) == (
        Summary(2, float("inf"), None)
    )
    out = snapshots._summary_out(Summary(2, float("nan"), 1.0))
    assert out["mean"] == "nan"


def test_a_payload_of_another_format_is_computed_again(client, andrologist, study):
    get(client, andrologist)
    ResultsSnapshot.objects.update(payload={"tables": "garbage"})
    _, html = get(client, andrologist)
    assert headline(html) == "1/2 = 50.0%"
    assert ResultsSnapshot.objects.get().payload_format == snapshots.FORMAT


# ---- the CSV and the PDF read the stored computation -------------------------------------------


def test_the_csv_uses_the_stored_computation_of_the_current_version(
    client, andrologist, study, django_assert_max_num_queries
):
    get(client, andrologist)
    stored = ResultsSnapshot.objects.get()
    stored.payload["tables"][0]["responders"] = 7  # only the stored payload says 7
    ResultsSnapshot.objects.filter(pk=stored.pk).update(payload=stored.payload)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("reports:results-csv"))
        body = b"".join(response.streaming_content).decode()
    assert ",7," in body.splitlines()[1]
    # After a write the CSV does not serve the old numbers: computed now.
    follow_up(study["non_responder"], andrologist, "M6")
    body = b"".join(client.get(reverse("reports:results-csv")).streaming_content).decode()
    assert ",7," not in body.splitlines()[1]
    assert study_results(user=andrologist).overall.responders == 1


# ---- a real worker on the real broker ----------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_computes_once_for_two_quick_views(client, andrologist, site, results_queued):
    from celery.contrib.testing.worker import start_worker

    from config.celery_app import app

    r = treated(site, andrologist)
    follow_up(r, andrologist, sperm="PELLET")
    assert app.conf.broker_url.startswith("redis://")
    client.force_login(andrologist)
    first = client.get(reverse(RESULTS))
    second = client.get(reverse(RESULTS))  # a double click: the same computation
    assert 'data-testid="computing"' in first.content.decode()
    assert first["Refresh"] == "5" and second.status_code == 200
    assert ResultsSnapshot.objects.count() == 1
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        deadline = time.monotonic() + 60
        while (
            ResultsSnapshot.objects.filter(status="done").count() == 0
            and time.monotonic() < deadline
        ):
            time.sleep(0.3)
    row = ResultsSnapshot.objects.get()
    assert row.status == "done" and row.attempts == 1
    html = client.get(reverse(RESULTS)).content.decode()
    assert headline(html) == "1/1 = 100.0%" and "(the current data)" in html
    assert Decimal(shown_version(html)) == data_version()


def test_the_results_pdf_uses_the_stored_computation_and_names_its_data_version(
    client, monitor, site, study, tmp_path
):
    from exports import services as export_services
    from exports.models import PdfJob

    from .test_results_page import pdf_text

    _, html = get(client, monitor, site=site.code)
    stored = ResultsSnapshot.objects.get()
    stored.payload["tables"][0]["non_responders"] = 5  # only the stored payload says 5
    ResultsSnapshot.objects.filter(pk=stored.pk).update(payload=stored.payload)
    client.post(reverse("exports:results-pdf"), {"site": site.code})
    job = PdfJob.objects.get(kind=PdfJob.Kind.RESULTS)
    assert export_services.pdf_job_build(job_id=job.pk) == export_services.BuildOutcome.BUILT
    download = client.get(reverse("exports:job-download", args=[job.uuid]))
    text = " ".join(pdf_text(b"".join(download.streaming_content), tmp_path).split())
    assert f"(data version {stored.data_version})" in text
    assert "Non-responders (n = 5)" in text
