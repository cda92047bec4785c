from datetime import timedelta

from django.core.files.base import ContentFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from monitoring.selectors import consent_audit_rows
from patients.models import Examination
from trial.models import ConsentVersion

from ..conftest import enrol, give_consent
from ..factories import save_crf


def test_the_consent_audit_flags_missing_documents_outdated_versions_and_data_before_consent(
    site, andrologist, admin_user, protocol
):
    no_consent = enrol(site, andrologist)
    documented = enrol(site, andrologist)
    consent = give_consent(documented, andrologist, days_ago=20)
    consent.document.save("signed.pdf", ContentFile(b"%PDF"), save=True)
    undocumented = enrol(site, andrologist)
    give_consent(undocumented, andrologist, days_ago=20)
    early = enrol(site, andrologist)
    give_consent(early, andrologist, days_ago=10)
    exam = save_crf(
        "examination",
        early.visits.get(definition__code="SCR"),
        andrologist,
        assessment_date=timezone.localdate() - timedelta(days=5),
    )
    # Back-dated outside the app (e.g. an import): the audit must catch it.
    Examination.objects.filter(pk=exam.pk).update(
        assessment_date=timezone.localdate() - timedelta(days=15)
    )

    rows = {r.patient.study_id: r for r in consent_audit_rows(user=admin_user)}
    assert rows[no_consent.study_id].problems == ["no consent"]
    assert rows[documented.study_id].problems == []
    assert rows[undocumented.study_id].problems == ["document missing"]
    assert "data before consent" in rows[early.study_id].problems

    ConsentVersion.objects.create(
        protocol=protocol, version="2.0", effective_date=timezone.localdate()
    )
    rows = {r.patient.study_id: r for r in consent_audit_rows(user=admin_user)}
    assert "re-consent due" in rows[documented.study_id].problems
    filtered = consent_audit_rows(user=admin_user, problem="data before consent")
    assert [r.patient for r in filtered] == [early]


def test_the_consent_audit_page_is_loud_about_data_before_consent_and_exports_csv(
    client, consented_patient, screening_visit, andrologist, admin_user
):
    exam = save_crf("examination", screening_visit, andrologist)
    Examination.objects.filter(pk=exam.pk).update(
        assessment_date=timezone.localdate() - timedelta(days=400)
    )
    client.force_login(admin_user)
    page = client.get(reverse("monitoring:consent-audit")).content.decode()
    assert 'data-testid="before-consent-alert"' in page
    csv_text = b"".join(
        client.get(reverse("monitoring:consent-audit"), {"format": "csv"}).streaming_content
    ).decode()
    header, row = csv_text.splitlines()[:2]
    assert header.startswith("study_id,site,consent_state")
    assert (
        row.startswith(f"{consented_patient.study_id},BEN,valid,1.0")
        and "data before consent" in row
    )


def test_the_consent_audit_page_filters_and_counts_in_the_database_as_the_rows_say(
    client,
    site,
    other_site,
    andrologist,
    other_andrologist,
    admin_user,
    protocol,
    django_assert_max_num_queries,
):
    """Each problem filter of the paginated page picks exactly the patients whose row shows
    that problem; the alert counts the same; 3 or 30 patients, the same queries."""
    from django.test.utils import CaptureQueriesContext

    from monitoring.selectors import (
        CONSENT_PROBLEMS,
        consent_audit_before_consent_count,
        consent_audit_patients,
    )
    from patients.services import consent_withdraw

    def add(k, at, user):
        for i in range(k):
            p = enrol(at, user)
            if i % 5 == 0:
                continue  # no consent
            c = give_consent(p, user, days_ago=20)
            if i % 5 == 1:
                c.document.save("signed.pdf", ContentFile(b"%PDF"), save=True)
            if i % 5 == 2:
                consent_withdraw(
                    consent=c, withdrawn_on=timezone.localdate(), reason="moved", user=user
                )
            if i % 5 == 3:
                exam = save_crf("examination", p.visits.get(definition__code="SCR"), user)
                Examination.objects.filter(pk=exam.pk).update(
                    assessment_date=timezone.localdate() - timedelta(days=25)
                )

    client.force_login(admin_user)
    url = reverse("monitoring:consent-audit")
    queries = {}
    for n, more in ((3, 3), (30, 27)):
        add(more, site, andrologist)
        with django_assert_max_num_queries(30), CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        queries[n] = len(ctx)
    assert queries[3] == queries[30]
    add(4, other_site, other_andrologist)
    ConsentVersion.objects.create(
        protocol=protocol, version="2.0", effective_date=timezone.localdate()
    )
    for site_code in ("", site.code):
        for problem in ["", *CONSENT_PROBLEMS]:
            rows = consent_audit_rows(user=admin_user, site_code=site_code, problem=problem)
            found = consent_audit_patients(user=admin_user, site_code=site_code, problem=problem)
            assert [p.pk for p in found] == [r.patient.pk for r in rows], problem
            assert consent_audit_before_consent_count(found) == sum(
                r.data_before_consent for r in rows
            )
    early = consent_audit_rows(user=admin_user, problem="data before consent")
    page = client.get(url, {"problem": "data before consent"}).content.decode()
    assert len(early) == 6 and f"of 1 · {len(early)} patients" in page
    assert page.count('class="table-danger"') == len(early)
    assert f"{len(early)} patient(s) have clinical data dated before their consent" in page
    page = client.get(url).content.decode()
    assert "Page 1 of 1 · 34 patients" in page and page.count("<tr class=") == 34


def test_a_coordinator_cannot_open_the_audit_pages(client, coordinator, andrologist):
    for user in (coordinator, andrologist):
        client.force_login(user)
        assert client.get(reverse("audit:trail")).status_code == 403
        assert client.get(reverse("monitoring:consent-audit")).status_code == 403


def test_the_audit_trail_searches_paginates_and_exports(
    client, consented_patient, screening_visit, andrologist, monitor, other_patient
):
    save_crf("examination", screening_visit, andrologist)
    client.force_login(monitor)
    url = reverse("audit:trail")
    page = client.get(
        url, {"study_id": consented_patient.study_id, "form_code": "examination"}
    ).content.decode()
    assert "weight_kg" in page and other_patient.study_id not in page
    assert "rows a page, newest first" in page  # keyset pages: no count of the trail
    export = b"".join(
        client.get(url, {"study_id": consented_patient.study_id, "format": "csv"}).streaming_content
    ).decode()
    lines = export.splitlines()
    assert lines[0].startswith("timestamp_utc,user,action,study_id")
    assert all(consented_patient.study_id in line for line in lines[1:])
    bad = client.get(url, {"date_from": "2026-05-02", "date_to": "2026-05-01"}).content.decode()
    assert "The end date is before the start date." in bad
