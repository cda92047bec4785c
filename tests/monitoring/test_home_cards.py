"""The home page tells each role what needs them: queries to answer for site staff; queries to
close, the SDV worklist and the last audit-trail review for monitors."""

from django.urls import reverse

from monitoring import services
from monitoring.models import DataQuery
from patients.models import Examination

from ..factories import complete_screening


def _card(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start : start + 400]


def test_site_staff_see_the_queries_to_answer_and_monitors_those_to_close(
    client, andrologist, monitor, consented_patient, screening_visit, other_patient
):
    complete_screening(screening_visit, andrologist)
    exam = Examination.objects.get(visit=screening_visit)
    for question in ("Weight?", "Height?"):
        services.query_open(record=exam, field_name="", question=question, user=monitor)
    answered = DataQuery.objects.first()
    services.query_answer(query=answered, text="Checked", user=andrologist)

    client.force_login(andrologist)
    html = client.get(reverse("home")).content.decode()
    assert ">1<" in _card(html, "open-queries") and ">1<" in _card(html, "answered-queries")
    assert "Open data queries (to answer)" in html
    assert 'data-testid="last-review"' not in html  # not a monitor's card

    client.force_login(monitor)
    html = client.get(reverse("home")).content.decode()
    assert "Answered, to close" in html and "Open the worklist" in html
    assert "never recorded" in _card(html, "last-review")


def test_the_last_recorded_audit_review_shows_for_monitors(client, monitor, site, other_site):
    from django.utils import timezone

    from monitoring.audit_review import AuditReview

    today = timezone.localdate()
    services.audit_trail_review_record(
        user=monitor, review=AuditReview(user=monitor, date_from=today, date_to=today), note="ok"
    )
    client.force_login(monitor)
    html = client.get(reverse("home")).content.decode()
    assert f"{today:%d %b %Y} · mona" in _card(html, "last-review")


def test_a_sites_last_review_shows_however_many_newer_reviews_other_sites_recorded(
    client, site, other_site
):
    """The selector once read the newest 5 x limit reviews and then kept the user's sites:
    five newer reviews at another site hid this site's own (issue 15)."""
    from django.utils import timezone

    from core.roles import Role
    from monitoring.audit_review import AuditReview
    from monitoring.selectors import audit_trail_reviews

    from ..conftest import make_user

    ben_monitor = make_user("benmon", Role.MONITOR, site)
    and_monitor = make_user("andmon", Role.MONITOR, other_site)
    today = timezone.localdate()

    def record(user, note):
        review = AuditReview(user=user, date_from=today, date_to=today)
        return services.audit_trail_review_record(user=user, review=review, note=note)

    own = record(ben_monitor, "BEN reviewed")
    for n in range(6):
        record(and_monitor, f"AND reviewed {n}")

    assert audit_trail_reviews(user=ben_monitor, limit=1) == [own]
    assert [r.note for r in audit_trail_reviews(user=and_monitor, limit=3)] == [
        "AND reviewed 5",
        "AND reviewed 4",
        "AND reviewed 3",
    ]
    client.force_login(ben_monitor)
    card = _card(client.get(reverse("home")).content.decode(), "last-review")
    assert "never recorded" not in card and "benmon" in card
