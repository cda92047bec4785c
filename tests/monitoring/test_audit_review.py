"""Audit-trail review (STANDARDS P11-20; ICH E6(R3) 4.2.3): each section's rule (a row that
must be flagged next to one that must not), site scoping, roles, the page and its CSVs."""

import csv
import io
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from core.roles import Role
from followup.services import adverse_event_create
from monitoring import services as monitoring
from monitoring.audit_review import AuditReview
from patients import services
from patients.models import Examination

from ..audit.factories import audit_row
from ..audit.test_part11 import _sign
from ..conftest import enrol, give_consent, make_user
from ..factories import complete_screening, save_crf
from ..followup.factories import ae_values


def _review(user, date_from=None, date_to=None, **kwargs) -> AuditReview:
    today = timezone.localdate()
    return AuditReview(
        user=user,
        date_from=date_from or today - timedelta(days=60),
        date_to=date_to or today,
        **kwargs,
    )


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    """Egypt's time (the sites'), independent of the code under test."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo("Africa/Cairo"))


def _wednesday_of_last_week() -> date:
    """A past Wednesday whose following Sunday is before today."""
    d = timezone.localdate() - timedelta(days=7)
    return d - timedelta(days=d.isoweekday() - 3)


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


# ---- 1. changes per user ---------------------------------------------------------------------


def test_changes_per_user_counts_records_fields_voids_and_weak_reasons(
    screening_visit, andrologist, lab_technician, monitor
):
    exam = save_crf("examination", screening_visit, lab_technician)
    exam.weight_kg = Decimal("81")
    services.crf_save(record=exam, user=lab_technician, reason="123456789")  # 9: weak
    exam.height_cm = Decimal("177")
    services.crf_save(record=exam, user=lab_technician, reason="  1234567890  ")  # 10: fine
    exam.weight_kg, exam.left_volume_ml = Decimal("82"), Decimal("11")
    services.crf_save(record=exam, user=lab_technician, reason="typo")  # 2 fields, weak
    services.crf_void(record=exam, user=lab_technician, reason="Entered for the wrong patient")

    rows = {r.user_name: r for r in _review(monitor).per_user}
    larry = rows["larry"]
    # The void writes two rows (date and reason) but is one record voided; the create writes
    # one row per field but is one record created.
    assert (larry.records_created, larry.fields_changed, larry.records_voided) == (1, 4, 1)
    assert larry.weak_reasons == 3
    alice = rows["alice"]  # enrolled, consented: patient, identity, 2 visits, consent
    assert alice.records_created == 5
    # The consent set the screening window (3 fields): the schedule's update, no reason typed.
    assert (alice.fields_changed, alice.weak_reasons) == (3, 0)


# ---- 2. changes after a signature ------------------------------------------------------------


def test_a_change_after_a_visit_signature_is_flagged_and_one_a_minute_before_is_not(
    rf, consented_patient, screening_visit, andrologist, monitor
):
    complete_screening(screening_visit, andrologist)
    signature = _sign(rf, andrologist, consented_patient, screening_visit)
    exam = Examination.objects.get(visit=screening_visit)
    signed = signature.signed_at
    audit_row(
        at=signed - timedelta(minutes=1), user=andrologist, patient=consented_patient, record=exam
    )
    after = audit_row(
        at=signed + timedelta(minutes=1), user=andrologist, patient=consented_patient, record=exam
    )
    # Another visit of the same patient is not covered by the screening visit's signature.
    procedure_day = consented_patient.visits.get(definition__code="D0")
    audit_row(
        at=signed + timedelta(minutes=2),
        user=andrologist,
        patient=consented_patient,
        record=procedure_day,
        field_name="target_date",
    )

    found = _review(monitor).after_signature
    assert [(r.entry.pk, r.signature) for r in found] == [(after.pk, signature)]


def test_an_unlock_and_the_correction_after_it_are_flagged_with_the_voided_signature(
    rf, consented_patient, screening_visit, andrologist, admin_user, monitor
):
    complete_screening(screening_visit, andrologist)
    signature = _sign(rf, andrologist, consented_patient, screening_visit)
    monitoring.signature_unlock(
        signature=signature, reason="Weight transcription error", user=admin_user
    )
    exam = Examination.objects.get(visit=screening_visit)
    exam.weight_kg = Decimal("81")
    services.crf_save(record=exam, user=andrologist, reason="Scale recalibrated")

    found = _review(monitor).after_signature
    assert {(r.entry.action, r.entry.user_name) for r in found} == {
        ("unlock", "adam"),
        ("update", "alice"),
    }
    assert {r.signature for r in found} == {signature}
    assert [r.entry.field_name for r in found if r.entry.action == "update"] == ["weight_kg"]


def test_after_a_casebook_signature_any_change_of_the_patient_is_flagged(
    rf, consented_patient, screening_visit, andrologist, other_patient, other_andrologist, monitor
):
    save_crf("examination", screening_visit, andrologist)
    casebook = _sign(rf, andrologist, consented_patient, None)
    onset = timezone.localdate() - timedelta(days=1)
    adverse_event_create(patient=consented_patient, data=ae_values(onset=onset), user=andrologist)
    # Unsigned patient: its new data is not "after a signature".
    adverse_event_create(patient=other_patient, data=ae_values(onset=onset), user=other_andrologist)

    found = _review(monitor).after_signature
    assert found and {r.entry.patient for r in found} == {consented_patient}
    assert {r.entry.content_type.model for r in found} == {"adverseevent"}
    assert {r.signature for r in found} == {casebook}


# ---- 3. out of hours ---------------------------------------------------------------------------


@pytest.fixture
def week_of_rows(consented_patient, andrologist):
    """One row per moment, named by its reason, in a past week (local time)."""
    wed = _wednesday_of_last_week()
    moments = {
        "Wed 21:59": _local(wed, 21, 59),
        "Wed 22:00": _local(wed, 22, 0),
        "Thu 05:59": _local(wed + timedelta(days=1), 5, 59),
        "Thu 06:00": _local(wed + timedelta(days=1), 6, 0),
        "Fri 12:00": _local(wed + timedelta(days=2), 12, 0),
        "Sat 23:30": _local(wed + timedelta(days=3), 23, 30),
        "Sun 12:00": _local(wed + timedelta(days=4), 12, 0),
    }
    for label, at in moments.items():
        audit_row(at=at, user=andrologist, patient=consented_patient, reason=label)
    return wed


def test_out_of_hours_is_22_00_to_06_00_and_friday_saturday_in_local_time(week_of_rows, monitor):
    wed = week_of_rows
    review = _review(monitor, date_from=wed, date_to=wed + timedelta(days=4))
    assert {e.reason: e.why for e in review.out_of_hours} == {
        "Wed 22:00": "night",
        "Thu 05:59": "night",
        "Fri 12:00": "weekend (Friday)",
        "Sat 23:30": "weekend (Saturday), night",
    }
    first = next(e for e in review.out_of_hours if e.reason == "Wed 22:00")
    assert (first.local.hour, first.local.minute) == (22, 0)
    assert first.at == _local(wed, 22, 0)  # the same instant, stored in UTC


def test_the_weekend_days_are_a_setting(week_of_rows, monitor, settings):
    settings.AUDIT_REVIEW_WEEKEND_DAYS = (6, 7)  # a Saturday-Sunday site
    wed = week_of_rows
    review = _review(monitor, date_from=wed, date_to=wed + timedelta(days=4))
    whys = {e.reason: e.why for e in review.out_of_hours}
    assert "Fri 12:00" not in whys and whys["Sun 12:00"] == "weekend (Sunday)"


def test_one_save_at_night_is_one_entry_with_its_fields(consented_patient, andrologist, monitor):
    wed = _wednesday_of_last_week()
    at = _local(wed, 23, 10)
    for name in ("weight_kg", "height_cm", "left_volume_ml"):
        audit_row(at=at, user=andrologist, patient=consented_patient, field_name=name)
    (entry,) = _review(monitor, date_from=wed, date_to=wed).out_of_hours
    assert entry.fields == 3 and entry.user_name == "alice" and entry.study_id == "BEN-001"


# ---- 4. late entries ---------------------------------------------------------------------------


def test_a_form_first_entered_more_than_14_days_after_its_date_is_late(
    screening_visit, andrologist, monitor
):
    today = timezone.localdate()
    save_crf("semen_analysis", screening_visit, andrologist, assessment_date=today - timedelta(15))
    on_time = save_crf(
        "semen_analysis",
        screening_visit,
        andrologist,
        sequence=2,
        assessment_date=today - timedelta(14),
    )
    save_crf("karyotype", screening_visit, andrologist)  # a report from 300 days ago: historical

    late = _review(monitor).late
    assert [(e.form_code, e.days_late, e.entered_on) for e in late] == [
        ("semen_analysis", 15, today)
    ]

    # The date as it stands now counts: a correction shows how late the entry really was.
    on_time.assessment_date = today - timedelta(20)
    services.crf_save(record=on_time, user=andrologist, reason="Date misread from the lab sheet")
    assert sorted(e.days_late for e in _review(monitor).late) == [15, 20]


def test_the_late_entries_csv(client, screening_visit, andrologist, monitor):
    today = timezone.localdate()
    save_crf("hormones", screening_visit, andrologist, assessment_date=today - timedelta(16))
    save_crf("examination", screening_visit, andrologist, assessment_date=today - timedelta(3))
    client.force_login(monitor)
    rows = _csv(
        client.get(reverse("monitoring:audit-review"), {"section": "late", "format": "csv"})
    )
    assert [(r["form"], r["days_late"], r["study_id"], r["site"]) for r in rows] == [
        ("hormones", "16", "BEN-001", "BEN")
    ]
    assert rows[0]["assessment_date"] == (today - timedelta(16)).isoformat()


# ---- 5. changes outside the application ---------------------------------------------------------


@pytest.mark.postgres
def test_a_change_made_in_the_database_is_reported_to_the_admin_only(
    screening_visit, andrologist, admin_user, monitor, time_machine
):
    exam = save_crf("examination", screening_visit, andrologist)
    assert not _review(admin_user).outside_application.exists()
    Examination.objects.filter(pk=exam.pk).update(weight_kg=Decimal("95"))
    # The trigger stamps the row with the database server's clock, which the test cannot pin:
    # the review is run just after it.
    stamped = AuditEntry.objects.filter(user_name__startswith="database:").latest("pk").timestamp
    time_machine.move_to(stamped + timedelta(minutes=1))

    rows = list(_review(admin_user).outside_application)
    assert [(r.field_name, r.old_value, r.new_value) for r in rows] == [
        ("weight_kg", "80.0", "95.0")
    ]
    assert rows[0].user_name.startswith("database:")
    # They carry no patient: a monitor does not see them (as on the audit-trail page).
    assert not _review(monitor).outside_application.exists()


# ---- scoping ------------------------------------------------------------------------------------


def test_a_monitor_of_one_site_sees_only_that_sites_rows_and_the_admin_filters_by_site(
    office_hours, consented_patient, other_patient, andrologist, other_andrologist, admin_user, site
):
    ben_monitor = make_user("max", Role.MONITOR, site)
    wed = _wednesday_of_last_week()
    audit_row(at=_local(wed, 23), user=andrologist, patient=consented_patient, reason="BEN night")
    audit_row(at=_local(wed, 23), user=other_andrologist, patient=other_patient, reason="AND night")

    def seen(user, **kwargs):
        review = _review(user, **kwargs)
        return {e.reason for e in review.out_of_hours}, {r.user_name for r in review.per_user}

    assert seen(ben_monitor) == ({"BEN night"}, {"alice"})
    assert seen(admin_user) == ({"BEN night", "AND night"}, {"alice", "bob"})
    assert seen(admin_user, site_code="AND") == ({"AND night"}, {"bob"})
    # Another site's code gives nothing, not that site's rows.
    assert seen(ben_monitor, site_code="AND") == (set(), set())


# ---- the page -----------------------------------------------------------------------------------


def test_only_monitors_and_admins_open_the_review_and_its_csv(
    client, andrologist, coordinator, monitor, admin_user
):
    url = reverse("monitoring:audit-review")
    for user in (andrologist, coordinator):
        client.force_login(user)
        assert client.get(url).status_code == 403
        assert client.get(url, {"section": "per-user", "format": "csv"}).status_code == 403
        assert (
            reverse("monitoring:audit-review") not in client.get(reverse("home")).content.decode()
        )
    for user in (monitor, admin_user):
        client.force_login(user)
        assert client.get(url).status_code == 200
        assert f'href="{url}"' in client.get(reverse("home")).content.decode()


def test_the_page_renders_with_no_data_and_the_default_period_is_the_last_30_days(
    client, admin_user
):
    client.force_login(admin_user)
    response = client.get(reverse("monitoring:audit-review"))
    html = response.content.decode()
    today = timezone.localdate()
    review = response.context["review"]
    assert (review.date_from, review.date_to) == (today - timedelta(days=29), today)
    assert "None: every change in the period went through the application." in html
    assert html.count("None in the period.") == 3
    assert "No data entered or changed in the period." in html
    assert 'data-testid="outside-application-alert"' not in html


def test_a_change_outside_the_application_is_shown_loudly_to_the_admin(
    client, consented_patient, andrologist, admin_user, monitor
):
    audit_row(
        at=timezone.now(),
        user=None,
        patient=None,
        record=consented_patient,
        reason="Changed outside the application (recorded by the database)",
    )
    client.force_login(admin_user)
    html = client.get(reverse("monitoring:audit-review")).content.decode()
    assert 'data-testid="outside-application-alert"' in html
    assert "1 change(s) were made directly in the database" in html
    rows = _csv(
        client.get(
            reverse("monitoring:audit-review"), {"section": "outside-application", "format": "csv"}
        )
    )
    assert [(r["database_user"], r["field"], r["new"]) for r in rows] == [
        ("database:edc", "volume_ml", "3.0")
    ]
    client.force_login(monitor)
    html = client.get(reverse("monitoring:audit-review")).content.decode()
    assert 'data-testid="outside-application-alert"' not in html
    assert "only administrators see them" in html


def test_the_page_shows_each_section_and_links_to_the_prefilled_audit_trail(
    client, week_of_rows, andrologist, monitor
):
    wed = week_of_rows
    client.force_login(monitor)
    params = {"date_from": wed.isoformat(), "date_to": (wed + timedelta(days=4)).isoformat()}
    html = client.get(reverse("monitoring:audit-review"), params).content.decode()
    links = {unescape(href) for href in re.findall(r'href="([^"]+)"', html)}
    trail = reverse("audit:trail")
    # Per user: that user's rows of the period; out of hours: that patient, user and day.
    assert f"{trail}?username=alice&{urlencode(params)}" in links
    assert f"{trail}?study_id=BEN-001&username=alice&date_from={wed}&date_to={wed}" in links
    assert f"Wed {wed:%d %b %Y} 22:00" in html and "21:59" not in html
    assert "weekend (Saturday), night" in html


def test_an_invalid_period_shows_the_error_and_reviews_the_default_period(client, monitor):
    client.force_login(monitor)
    response = client.get(
        reverse("monitoring:audit-review"), {"date_from": "2025-03-10", "date_to": "2025-03-01"}
    )
    assert "The end date is before the start date." in response.content.decode()
    assert response.context["review"].date_to == timezone.localdate()


def test_each_section_exports_csv_with_only_the_flagged_rows(
    client, week_of_rows, rf, screening_visit, consented_patient, andrologist, monitor
):
    wed = week_of_rows
    client.force_login(monitor)
    url = reverse("monitoring:audit-review")
    period = {"date_from": wed.isoformat(), "date_to": (wed + timedelta(days=4)).isoformat()}

    night = _csv(client.get(url, {**period, "section": "out-of-hours", "format": "csv"}))
    assert [r["reason"] for r in night] == ["Sat 23:30", "Fri 12:00", "Thu 05:59", "Wed 22:00"]
    assert night[-1]["local_time"].startswith(f"{wed:%Y-%m-%d}T22:00:00")
    assert night[-1]["why"] == "night" and night[-1]["study_id"] == "BEN-001"

    per_user = _csv(client.get(url, {**period, "section": "per-user", "format": "csv"}))
    assert [(r["user"], r["fields_changed"]) for r in per_user] == [("alice", "7")]

    complete_screening(screening_visit, andrologist)
    signature = _sign(rf, andrologist, consented_patient, screening_visit)
    exam = Examination.objects.get(visit=screening_visit)
    audit_row(
        at=signature.signed_at + timedelta(seconds=1),
        user=andrologist,
        patient=consented_patient,
        record=exam,
        field_name="weight_kg",
    )
    after = _csv(client.get(url, {"section": "after-signature", "format": "csv"}))
    assert [(r["study_id"], r["field"], r["signature_scope"]) for r in after] == [
        ("BEN-001", "weight_kg", "visit")
    ]
    assert after[0]["signature_visit"] == "SCR" and after[0]["signature_voided_at_utc"] == ""
    html = client.get(url).content.decode()
    assert f"Visit SCR signed {signature.signed_at:%Y-%m-%d %H:%M:%S} by Alice" in html
    assert "unlocked" not in html
    assert client.get(url, {"section": "nonsense", "format": "csv"}).status_code == 404


def test_the_page_runs_a_bounded_number_of_queries(
    client,
    rf,
    site,
    other_site,
    andrologist,
    other_andrologist,
    admin_user,
    django_assert_max_num_queries,
):
    def add_patient(site, user, n):
        patient = enrol(site, user, name=f"P {n}")
        give_consent(patient, user)
        visit = patient.visits.get(definition__code="SCR")
        complete_screening(visit, user)
        signature = _sign(rf, user, patient, visit)
        monitoring.signature_unlock(
            signature=signature, reason="Correction needed", user=admin_user
        )
        exam = Examination.objects.get(visit=visit)
        exam.weight_kg = Decimal("81")
        services.crf_save(record=exam, user=user, reason="ok")
        audit_row(at=_local(_wednesday_of_last_week(), 23), user=user, patient=patient)

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("monitoring:audit-review"))
        review = response.context["review"]
        assert response.status_code == 200 and review.after_signature and review.out_of_hours
        return len(queries)

    client.force_login(admin_user)
    add_patient(site, andrologist, 1)
    page_queries()  # content types cached, as in a running server
    few = page_queries()
    for n in range(2, 5):
        add_patient(site, andrologist, n)
        add_patient(other_site, other_andrologist, n)
    assert {r.user_name for r in _review(admin_user).per_user} == {"alice", "bob"}
    assert page_queries() == few  # more patients, rows and signatures: no more queries
    # 15 whatever the data (session, user, the session's verified device, roles, sites, one
    # per section, the recorded reviews...), plus one per CRF type whose records the
    # late-entry and after-signature rules read (here 6).
    with django_assert_max_num_queries(27):
        client.get(reverse("monitoring:audit-review"))


# ---- recording a review ----------------------------------------------------------------------


def test_a_monitor_records_the_review_with_its_findings_and_note(client, monitor, site):
    from monitoring.models import AuditTrailReview

    client.force_login(monitor)
    today = timezone.localdate()
    period = {"site": "BEN", "date_from": today - timedelta(days=7), "date_to": today}
    page = client.get(reverse("monitoring:audit-review"), period).content.decode()
    assert 'data-testid="record-review"' in page and "No review recorded yet." in page
    response = client.post(
        reverse("monitoring:audit-review-record"),
        {**period, "note": "Weekly review: nothing to act on."},
    )
    assert response.status_code == 302 and "site=BEN" in response["Location"]
    review = AuditTrailReview.objects.get()
    assert (review.reviewed_by, review.site_code, review.sites_covered) == (monitor, "BEN", ["BEN"])
    assert (review.date_from, review.date_to) == (period["date_from"], today)
    assert review.findings == {
        "users_active": 0,
        "changes_after_signature": 0,
        "out_of_hours_entries": 0,
        "late_entries": 0,
        "changes_outside_application": None,  # a monitor does not see them
    }
    html = client.get(response["Location"]).content.decode()
    assert "Weekly review: nothing to act on." in html and "No review recorded yet." not in html


def test_a_review_without_a_note_is_refused_and_the_page_keeps_the_period(client, monitor, site):
    from monitoring.models import AuditTrailReview

    client.force_login(monitor)
    response = client.post(
        reverse("monitoring:audit-review-record"),
        {"site": "BEN", "date_from": "2026-01-01", "date_to": "2026-01-31", "note": " "},
    )
    html = response.content.decode()
    assert response.status_code == 200 and "This field is required." in html
    assert "Period 01 Jan 2026 to 31 Jan 2026" in html
    assert not AuditTrailReview.objects.exists()


def test_a_review_of_another_site_or_by_site_staff_is_refused(
    client, andrologist, site, other_site
):
    from monitoring.models import AuditTrailReview

    data = {"site": "AND", "date_from": "2026-01-01", "date_to": "2026-01-31", "note": "x"}
    client.force_login(make_user("mo", Role.MONITOR, site))  # BEN only
    assert client.post(reverse("monitoring:audit-review-record"), data).status_code == 403
    client.force_login(andrologist)
    assert (
        client.post(reverse("monitoring:audit-review-record"), {**data, "site": "BEN"}).status_code
        == 403
    )
    assert not AuditTrailReview.objects.exists()


def test_a_recorded_review_cannot_be_changed(monitor, site):
    from monitoring.services import audit_trail_review_record

    record = audit_trail_review_record(user=monitor, review=_review(monitor), note="ok")
    with pytest.raises(PermissionError):
        record.save()
    with pytest.raises(PermissionError):
        record.delete()


def test_a_review_of_an_inverted_period_is_refused(client, monitor, site):
    from monitoring.models import AuditTrailReview

    client.force_login(monitor)
    response = client.post(
        reverse("monitoring:audit-review-record"),
        {"site": "", "date_from": "2026-02-01", "date_to": "2026-01-01", "note": "checked"},
    )
    assert "The period&#x27;s end is before its start" in response.content.decode()
    assert not AuditTrailReview.objects.exists()
