"""User access list and periodic access review (STANDARDS P11-04; ICH E6(R3) 4.3.8): every
account with its roles, sites and access-change history, a CSV, and an append-only review."""

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEntry
from core.roles import Role
from monitoring import services
from monitoring.models import AccessReview

from ..audit.test_access_change_actor import _user_change_form
from ..conftest import make_user


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def deactivated_by_admin(client, admin_user, andrologist):
    """alice, made Monitor and deactivated by adam in the Django admin."""
    monitor_group = Group.objects.get_or_create(name=Role.MONITOR)[0]
    client.force_login(admin_user)
    data = _user_change_form(
        andrologist,
        groups=[*andrologist.groups.values_list("pk", flat=True), monitor_group.pk],
        is_active="",
    )
    assert client.post(reverse("admin:auth_user_change", args=[andrologist.pk]), data).status_code
    andrologist.refresh_from_db()
    assert not andrologist.is_active
    return andrologist


def test_the_admin_sees_every_account_with_roles_sites_status_and_who_changed_it(
    client, admin_user, deactivated_by_admin, coordinator, monitor
):
    client.force_login(admin_user)
    response = client.get(reverse("monitoring:user-access"))
    rows = {r.user.username: r for r in response.context["rows"]}
    assert set(rows) == {"adam", "alice", "carol", "mona"}
    alice = rows["alice"]
    assert alice.roles == ["Andrologist", "Monitor"] and alice.sites == ["BEN"]
    assert rows["mona"].sites == ["AND", "BEN"]
    history = [(e.kind, e.detail, e.actor_name) for e in alice.changes]
    # The admin's form saves the account, then its groups.
    assert history[:2] == [
        ("role_change", "roles added: Monitor", "adam"),
        ("account_change", "account deactivated", "adam"),
    ]
    # Set up outside a request (the test fixtures): recorded, with no actor to name.
    assert ("site_change", "site added: BEN", "") in history
    html = response.content.decode()
    assert "deactivated" in html and "roles added: Monitor · by adam" in html
    assert "by (not recorded)" in html
    assert "Access has never been reviewed." in html


def test_the_user_access_csv_lists_every_account_and_the_history_csv_every_change(
    client, admin_user, deactivated_by_admin
):
    client.force_login(admin_user)
    url = reverse("monitoring:user-access")
    users = {r["username"]: r for r in _csv(client.get(url, {"format": "csv"}))}
    assert users["alice"]["roles"] == "Andrologist; Monitor"
    assert users["alice"]["active"] == "False" and users["adam"]["superuser"] == "True"
    assert users["adam"]["sites"] == "AND; BEN" and users["adam"]["last_login_utc"]
    history = _csv(client.get(url, {"format": "history-csv"}))
    assert {
        "username": "alice",
        "change": "account_change",
        "detail": "account deactivated",
        "changed_by": "adam",
    }.items() <= next(h for h in history if h["change"] == "account_change").items()
    assert {h["username"] for h in history} == {"alice", "adam"}


def test_only_the_admin_opens_the_page_its_csv_and_records_a_review(
    client, andrologist, coordinator, monitor, admin_user
):
    page = reverse("monitoring:user-access")
    record = reverse("monitoring:access-review-record")
    for user in (andrologist, coordinator, monitor):
        client.force_login(user)
        assert client.get(page).status_code == 403
        assert client.get(page, {"format": "csv"}).status_code == 403
        assert client.post(record, {"note": "Looks fine"}).status_code == 403
        assert page not in client.get(reverse("home")).content.decode()
    assert not AccessReview.objects.exists()
    client.force_login(admin_user)
    assert f'href="{page}"' in client.get(reverse("home")).content.decode()


def test_recording_a_review_keeps_the_list_as_it_stood_and_shows_it_on_the_page(
    client, admin_user, andrologist
):
    client.force_login(admin_user)
    record = reverse("monitoring:access-review-record")
    client.post(record, {"note": "   "})
    assert not AccessReview.objects.exists()  # a review says what was checked
    response = client.post(record, {"note": "All accounts needed; no change."}, follow=True)
    review = AccessReview.objects.get()
    assert (review.reviewed_by, review.note) == (admin_user, "All accounts needed; no change.")
    assert {u["username"]: u["roles"] for u in review.access_list} == {
        "adam": ["Admin"],
        "alice": ["Andrologist"],
    }
    html = response.content.decode()
    assert f"Last reviewed on <strong>{review.reviewed_at:%d %b %Y %H:%M} UTC</strong>" in html
    assert "by <strong>Adam</strong>: All accounts needed; no change." in html
    # It is in the audit trail like any record, attributed to the admin.
    assert AuditEntry.objects.filter(
        content_type__model="accessreview", object_id=review.pk, action="create", user=admin_user
    ).exists()

    # A later change of access does not alter what that review saw.
    andrologist.groups.add(Group.objects.get_or_create(name=Role.MONITOR)[0])
    review.refresh_from_db()
    assert next(u for u in review.access_list if u["username"] == "alice")["roles"] == [
        "Andrologist"
    ]


def test_an_access_review_cannot_be_changed_or_deleted(admin_user):
    review = services.access_review_record(user=admin_user, note="Quarterly review")
    review.note = "Rewritten"
    with pytest.raises(PermissionError):
        review.save()
    with pytest.raises(PermissionError):
        review.delete()
    assert AccessReview.objects.get().note == "Quarterly review"


@pytest.mark.postgres
def test_the_database_refuses_update_and_delete_of_access_reviews(admin_user):
    services.access_review_record(user=admin_user, note="Quarterly review")
    for sql in (
        "UPDATE monitoring_accessreview SET note = 'forged'",
        "DELETE FROM monitoring_accessreview",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as c:
            c.execute(sql)
    assert AccessReview.objects.get().note == "Quarterly review"
    # Written by the application: not reported as a change made outside it.
    assert not AuditEntry.objects.filter(user_name__startswith="database:").exists()


def test_the_page_runs_the_same_queries_for_many_users(client, admin_user, site, other_site):
    client.force_login(admin_user)
    url = reverse("monitoring:user-access")
    client.get(url)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    few = queries()
    for n in range(6):
        make_user(f"user{n}", Role.COORDINATOR, site, other_site).groups.add(
            Group.objects.get_or_create(name=Role.LAB_TECHNICIAN)[0]
        )
    services.access_review_record(user=admin_user, note="Checked")
    assert queries() == few
    # Session, user, the session's verified device (django-otp), the session guard's lockout
    # check, roles, sites, the users with their groups, memberships and sites, the access
    # changes, the locked-out accounts, the users with an authenticator, the reviews, and the
    # session's save.
    assert few <= 19, few
