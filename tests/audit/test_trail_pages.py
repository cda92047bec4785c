"""The audit-trail page cut by keyset (issue 12): newest first, "newer" and "older" links
that carry a row's (timestamp, id), no COUNT(*) over the trail; no row lost or repeated across
pages, rows of one instant included; the filters kept; a tampered cursor is the first page."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEntry
from audit.selectors import audit_trail, parse_trail_cursor, trail_cursor, trail_page

from ..conftest import enrol, give_consent
from .factories import audit_row


@pytest.fixture
def rows(patient, andrologist):
    """37 rows: groups of rows written at the same instant (ties), spread over a few days."""
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    made = []
    for i in range(37):
        at = start + timedelta(hours=i // 5)  # five rows an instant
        made.append(audit_row(at=at, user=andrologist, patient=patient, reason=f"row {i}"))
    return made


def _walk(entries, size):
    """Every page from the first by the "older" links, then back by the "newer" ones."""
    pages = [trail_page(entries, size=size)]
    while pages[-1].older:
        pages.append(trail_page(entries, older=pages[-1].older, size=size))
    back = [pages[-1]]
    while back[-1].newer:
        back.append(trail_page(entries, newer=back[-1].newer, size=size))
    return pages, back


@pytest.mark.parametrize("size", [1, 4, 5, 7, 50])
def test_pages_hold_every_row_once_in_order(rows, admin_user, size):
    entries = audit_trail(user=admin_user)
    everything = [e.pk for e in entries]
    assert len(everything) >= len(rows)
    pages, back = _walk(entries, size)
    assert [e.pk for p in pages for e in p] == everything
    assert all(len(p) == size for p in pages[:-1])
    # Back to the newest by the "newer" links: the same pages, the first one full.
    assert [[e.pk for e in p] for p in back] == [[e.pk for e in p] for p in reversed(pages)]
    assert back[-1].newer is None


def test_a_cursor_is_the_rows_place(rows):
    entry = AuditEntry.objects.get(pk=rows[3].pk)
    assert parse_trail_cursor(trail_cursor(entry)) == (entry.timestamp, entry.pk)
    for bad in ("", "x", "1_", "_1", "1.5_2", "-1_-1", "9" * 30 + "_1", "1_" + "9" * 30, "1_2_3"):
        assert parse_trail_cursor(bad) is None
    assert parse_trail_cursor("999999999999999999_1") is None  # past datetime's range


def test_the_page_links_keep_the_filters(client, rows, monitor, patient):
    client.force_login(monitor)
    url = reverse("audit:trail")
    html = client.get(url, {"study_id": patient.study_id}).content.decode()
    assert html.count('data-testid="trail"') == 1
    older = html[html.index('rel="next"') - 300 : html.index('rel="next"')]
    assert f"study_id={patient.study_id}" in older and "older=" in older
    assert "Newer" not in html[html.index('data-testid="trail-pages"') :]
    cursor = older.split("older=")[1].split('"')[0]
    second = client.get(url, {"study_id": patient.study_id, "older": cursor})
    html = second.content.decode()
    assert "newer=" in html
    first_ids = [e.pk for e in audit_trail(user=monitor, study_id=patient.study_id)[:50]]
    assert [e.pk for e in second.context["page_obj"]] == [
        e.pk for e in audit_trail(user=monitor, study_id=patient.study_id)[50:100]
    ]
    assert not set(first_ids) & {e.pk for e in second.context["page_obj"]}


@pytest.mark.parametrize(
    "params",
    [
        {"older": "garbage"},
        {"newer": "-1_-1"},
        {"older": "9" * 40},
        {"newer": "99999999999999999_1"},
        {"older": "0_0"},
        {"newer": "0_0"},
        {"page": "last"},
        {"older": "1_1", "newer": "2_2"},
    ],
)
def test_a_tampered_cursor_is_never_an_error(client, rows, monitor, params):
    client.force_login(monitor)
    assert client.get(reverse("audit:trail"), params).status_code == 200


def test_the_page_counts_nothing_and_reads_the_same_queries_at_3_and_30_patients(
    client, site, andrologist, monitor
):
    client.force_login(monitor)
    url = reverse("audit:trail")
    queries = {}
    for n in (3, 30):
        while AuditEntry.objects.values("patient").distinct().count() - 1 < n:
            give_consent(enrol(site, andrologist), andrologist)
        client.get(url)  # warm (session, content types)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        first = response.context["page_obj"]
        with CaptureQueriesContext(connection) as ctx_older:
            client.get(url, {"older": first.older})
        assert len(ctx_older) == len(ctx)
        queries[n] = len(ctx)
        sql = " ".join(q["sql"] for q in ctx.captured_queries).upper()
        assert "COUNT(" not in sql
    assert queries[3] == queries[30]
