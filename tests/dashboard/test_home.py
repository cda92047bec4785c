"""The home page counts patients by stored stage and flags: a bounded number of queries,
the same whatever the number of patients."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.models import PatientStatus
from patients.selectors import Stage

from ..conftest import enrol, give_consent
from ..factories import save_crf


def _figures(html: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'\?stage=(\w+)">[^<]+</a></td><td class="text-end">(\d+)<', html))


def test_the_home_page_counts_stages_and_flags_in_bounded_queries(
    client, site, other_site, andrologist, monitor, django_assert_max_num_queries
):
    enrol(site, andrologist)
    client.force_login(monitor)
    url = reverse("home")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(3):
        p = enrol(site, andrologist)
        give_consent(p, andrologist)
    flagged = enrol(other_site, andrologist)
    give_consent(flagged, andrologist)
    save_crf(
        "semen_analysis", flagged.visits.get(definition__code="SCR"), andrologist, abstinence_days=9
    )
    # 14 statements and the request's savepoint (4 in a test's transaction): the fixed ones
    # (session read and save, user, two-factor device, axes, roles, the menu's sites) and the
    # page's own: the protocol, the stage counts and flags (one aggregate), the follow-up
    # visit definitions and the visit counts (one aggregate), the data queries, the last
    # audit review's sites (the reviews themselves are read through a server-side cursor on
    # PostgreSQL).
    with django_assert_max_num_queries(18), CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert len(many) == len(few)
    stage_queries = [q["sql"] for q in many if PatientStatus._meta.db_table in q["sql"]]
    assert len(stage_queries) == 1
    # No stage computed from the form tables (patients.selectors.with_stage's CASE).
    assert not [q["sql"] for q in many if "THEN 'awaiting_consent'" in q["sql"]]
    html = response.content.decode()
    assert 'data-testid="patient-total">5<' in html
    figures = _figures(html)
    assert figures[Stage.SCREENING] == "4" and figures[Stage.AWAITING_CONSENT] == "1"
    assert '?flagged=1">1</a>' in html


def test_the_home_page_counts_only_the_users_sites(client, site, other_site, andrologist):
    enrol(site, andrologist)
    enrol(other_site, andrologist)
    client.force_login(andrologist)
    html = client.get(reverse("home")).content.decode()
    assert 'data-testid="patient-total">1<' in html
