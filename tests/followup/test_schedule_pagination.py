"""The schedule counted, filtered and paginated by the database: the status rule in SQL
(followup.selectors.with_schedule_status) agrees with the rule in Python (schedule_rows) on
every visit and every day; pages keep their filters; a bad page number is no error."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from followup import selectors
from followup.selectors import (
    ScheduleFilter,
    VisitStatus,
    _followup_visits,
    schedule_rows,
    visits_due_list,
    with_schedule_status,
)
from followup.services import visit_add_unscheduled
from patients.models import Visit

from ..factories import save_crf
from .factories import save, treated_patient, visit

TODAY = timezone.localdate


@pytest.fixture
def varied(site, other_site, andrologist, other_andrologist):
    """Visits in every situation: upcoming, open, overdue, missed, done, unscheduled with
    and without a planned date, the last visit's grace period."""
    patients = [
        treated_patient(site, andrologist, procedure_days_ago=days)
        for days in (5, 110, 117, 140, 170, 200, 330, 375, 420)
    ]
    patients.append(treated_patient(other_site, other_andrologist, procedure_days_ago=140))
    done = patients[4]  # M4 was 50 days ago: entered in full
    m4 = visit(done, "M4")
    on = TODAY() - timedelta(days=50)
    save("followup_visit", m4, andrologist, on=on)
    save_crf("semen_analysis", m4, andrologist, assessment_date=on)
    save_crf("hormones", m4, andrologist, assessment_date=on)
    partly = visit(patients[5], "M4")  # entered in part: not done
    save("followup_visit", partly, andrologist, on=TODAY() - timedelta(days=80))
    visit_add_unscheduled(patient=patients[2], user=andrologist)
    visit_add_unscheduled(
        patient=patients[3], user=andrologist, planned_date=TODAY() + timedelta(days=2)
    )
    return patients


def test_the_status_in_sql_is_the_status_rule_on_every_day(varied):
    visits = _followup_visits(Visit.objects.all())
    assert visits.count() > 40
    seen = set()
    for offset in range(-40, 260, 11):
        today = TODAY() + timedelta(days=offset)
        expected = {
            r.visit.pk: (r.status, r.due_this_week, r.missed_from)
            for r in schedule_rows(visits=visits, today=today)
        }
        in_sql = with_schedule_status(visits, today=today)
        got = {v.pk: (v.schedule_status, v.due_week) for v in in_sql}
        assert got == {pk: value[:2] for pk, value in expected.items()}, today
        seen |= {status for status, _ in got.values()}
        # The page's rows carry the same missed-from day as the rule.
        schedule = visits_due_list(user=_superuser(), today=today, show=VisitStatus.OVERDUE)
        for row in schedule.rows:
            assert row.missed_from == expected[row.visit.pk][2]
    assert seen >= {
        VisitStatus.UPCOMING,
        VisitStatus.OPEN,
        VisitStatus.OVERDUE,
        VisitStatus.MISSED,
        VisitStatus.DONE,
    }


def _superuser():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get_or_create(
        username="schedule-root", defaults={"is_superuser": True}
    )[0]


def test_the_counts_and_each_filter_agree_with_the_rule(varied, monitor):
    visits = _followup_visits(Visit.objects.all())
    rows = schedule_rows(visits=visits, today=TODAY())
    schedule = visits_due_list(user=monitor, today=TODAY())
    assert schedule.counts == {
        "week": sum(r.due_this_week for r in rows),
        **{
            s: sum(r.status == s for r in rows)
            for s in (VisitStatus.OPEN, VisitStatus.OVERDUE, VisitStatus.MISSED)
        },
    }
    for show, _ in ScheduleFilter.CHOICES:
        shown = visits_due_list(user=monitor, today=TODAY(), show=show)
        if show == ScheduleFilter.ACTIONABLE:
            keep = [
                r for r in rows if r.due_this_week or r.status in ScheduleFilter.ACTIONABLE_STATUSES
            ]
        elif show == ScheduleFilter.WEEK:
            keep = [r for r in rows if r.due_this_week]
        else:
            keep = [r for r in rows if r.status == show]
        # In the rule's order (target date, then visit), the database's order.
        assert [r.visit.pk for r in shown.rows] == [r.visit.pk for r in keep], show
        assert shown.page.paginator.count == len(keep)


@pytest.fixture
def many_upcoming(site, other_site, andrologist, other_andrologist, monkeypatch):
    """3 patients at BEN treated 5 days ago (5 upcoming visits each), 1 at AND; 2 a page."""
    monkeypatch.setattr(selectors, "SCHEDULE_PAGE_SIZE", 2)
    ben = [treated_patient(site, andrologist, procedure_days_ago=5) for _ in range(3)]
    treated_patient(other_site, other_andrologist, procedure_days_ago=5)
    return ben


def test_pages_keep_their_filters(client, many_upcoming, monitor):
    every = visits_due_list(user=monitor, today=TODAY(), site_code="BEN", show="upcoming", page=1)
    assert every.page.paginator.count == 15 and every.page.paginator.num_pages == 8
    second = visits_due_list(
        user=monitor, today=TODAY(), site_code="BEN", show="upcoming", page="2"
    )
    assert len(second.rows) == 2
    assert {r.patient.site.code for r in second.rows} == {"BEN"}
    assert {r.visit.pk for r in second.rows}.isdisjoint(r.visit.pk for r in every.rows)
    client.force_login(monitor)
    url = reverse("followup:schedule")
    html = client.get(url, {"site": "BEN", "show": "upcoming", "page": 2}).content.decode()
    assert html.count("<tr data-patient=") == 2
    assert "Page 2 of 8 · 15 visits" in html
    assert 'href="?site=BEN&amp;show=upcoming&amp;page=3"' in html
    assert 'href="?site=BEN&amp;show=upcoming&amp;page=1"' in html
    for row in second.rows:
        assert f'data-patient="{row.patient.study_id}" data-visit="{row.visit.label}"' in html
    # The counts are the site's, whatever the page.
    assert 'data-testid="count-week">0<' in html


@pytest.mark.parametrize("page", ["abc", "0", "-3", "999", "2.5", "", "1e9"])
def test_a_bad_page_number_is_no_error(client, many_upcoming, monitor, page):
    client.force_login(monitor)
    response = client.get(reverse("followup:schedule"), {"show": "upcoming", "page": page})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<tr data-patient=") == 2
    assert ("Page 1 of 10" in html) or ("Page 10 of 10" in html)


def test_the_page_costs_the_same_queries_on_any_page(
    client, many_upcoming, monitor, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(monitor)
    url = reverse("followup:schedule")
    client.get(url, {"show": "upcoming"})
    counts = []
    for page in (1, 2, 10):
        with CaptureQueriesContext(connection) as queries:
            client.get(url, {"show": "upcoming", "page": page})
        counts.append(len(queries))
    assert len(set(counts)) == 1
    # 10 statements and the request's savepoint (4 in a test's transaction): the fixed ones
    # (session read and save, user, two-factor device, axes, roles, the menu's and the
    # filter's sites) and the page's own: the follow-up visit definitions, the counts (one
    # aggregate), the page of rows.
    with django_assert_max_num_queries(14):
        client.get(url, {"show": "upcoming", "page": 3})
