from datetime import timedelta

from django.core.files.base import ContentFile
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
    assert "Page 1 of" in page
    export = b"".join(
        client.get(url, {"study_id": consented_patient.study_id, "format": "csv"}).streaming_content
    ).decode()
    lines = export.splitlines()
    assert lines[0].startswith("timestamp_utc,user,action,study_id")
    assert all(consented_patient.study_id in line for line in lines[1:])
    bad = client.get(url, {"date_from": "2026-05-02", "date_to": "2026-05-01"}).content.decode()
    assert "The end date is before the start date." in bad
