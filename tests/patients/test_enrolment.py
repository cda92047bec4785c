from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from patients.models import Patient

from ..conftest import enrol


def test_study_ids_are_sequential_per_site(site, other_site, andrologist, other_andrologist):
    ids = [enrol(site, andrologist).study_id for _ in range(3)]
    assert ids == ["BEN-001", "BEN-002", "BEN-003"]
    assert enrol(other_site, other_andrologist).study_id == "AND-001"
    assert enrol(site, andrologist).study_id == "BEN-004"


def test_enrolling_in_the_browser_assigns_the_id_and_opens_the_patient(client, andrologist):
    client.force_login(andrologist)
    response = client.post(
        reverse("patients:patient-enrol"),
        {
            "site": andrologist.site_memberships.get().site_id,
            "enrolment_date": timezone.localdate().isoformat(),
            "date_of_birth": (timezone.localdate() - timedelta(days=365 * 30)).isoformat(),
            "full_name": "Karim Typed",
        },
        follow=True,
    )
    patient = Patient.objects.get()
    assert patient.study_id == "BEN-001"
    assert "BEN-001 enrolled" in response.content.decode()
    assert patient.visits.filter(definition__code="SCR").exists()


def test_an_implausible_age_is_refused_on_the_field_and_keeps_what_was_typed(client, andrologist):
    client.force_login(andrologist)
    response = client.post(
        reverse("patients:patient-enrol"),
        {
            "site": andrologist.site_memberships.get().site_id,
            "enrolment_date": timezone.localdate().isoformat(),
            "date_of_birth": (timezone.localdate() - timedelta(days=365 * 12)).isoformat(),
            "full_name": "Karim Typed",
            "phone": "+20 123 456",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "it must be between 18 and 70" in html
    assert 'value="Karim Typed"' in html and 'value="+20 123 456"' in html
    assert not Patient.objects.exists()


def test_a_monitor_cannot_enrol(client, monitor):
    client.force_login(monitor)
    assert client.get(reverse("patients:patient-enrol")).status_code == 403


def test_a_user_cannot_enrol_at_a_site_that_is_not_theirs(client, andrologist, other_site):
    client.force_login(andrologist)
    response = client.post(
        reverse("patients:patient-enrol"),
        {
            "site": other_site.pk,
            "enrolment_date": timezone.localdate().isoformat(),
            "date_of_birth": "1990-01-01",
            "full_name": "X",
        },
    )
    assert "Select a valid choice" in response.content.decode()
    assert not Patient.objects.exists()


def test_identifiers_are_shown_to_site_staff_only(
    client, andrologist, coordinator, monitor, admin_user, consented_patient
):
    url = reverse("patients:patient-detail", args=[consented_patient.uuid])
    for user in (andrologist, coordinator):
        client.force_login(user)
        assert "Ahmed Secretname" in client.get(url).content.decode()
    for user in (monitor, admin_user):
        client.force_login(user)
        html = client.get(url).content.decode()
        assert consented_patient.study_id in html
        assert "Ahmed Secretname" not in html
        assert (
            client.get(reverse("patients:identity-edit", args=[consented_patient.uuid])).status_code
            == 403
        )


def test_identifiers_never_appear_in_the_patient_list(client, andrologist, consented_patient):
    client.force_login(andrologist)
    html = client.get(reverse("patients:patient-list")).content.decode()
    assert consented_patient.study_id in html
    assert "Secretname" not in html and "29001011234567" not in html


def test_changing_an_identifier_needs_a_reason_and_is_audited(
    client, andrologist, consented_patient
):
    from audit.models import AuditEntry

    client.force_login(andrologist)
    url = reverse("patients:identity-edit", args=[consented_patient.uuid])
    data = {
        "full_name": "Ahmed Corrected",
        "phone": "+20 111",
        "national_id": "29001011234567",
        "address": "",
    }
    response = client.post(url, data)
    assert "This field is required" in response.content.decode()
    client.post(url, {**data, "reason_for_change": "Spelling on ID card"})
    entry = AuditEntry.objects.get(field_name="full_name", action="update")
    assert (entry.old_value, entry.new_value, entry.reason) == (
        "Ahmed Secretname",
        "Ahmed Corrected",
        "Spelling on ID card",
    )
