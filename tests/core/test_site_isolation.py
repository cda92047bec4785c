from django.urls import reverse

from patients.models import Patient


def test_patient_queryset_is_limited_to_the_users_sites(
    andrologist, other_andrologist, consented_patient, other_patient, monitor
):
    assert list(Patient.objects.for_user(andrologist)) == [consented_patient]
    assert list(Patient.objects.for_user(other_andrologist)) == [other_patient]
    assert set(Patient.objects.for_user(monitor)) == {consented_patient, other_patient}


def test_a_user_of_site_a_cannot_list_site_b_patients(
    client, andrologist, consented_patient, other_patient
):
    client.force_login(andrologist)
    html = client.get(reverse("patients:patient-list")).content.decode()
    assert consented_patient.study_id in html
    assert other_patient.study_id not in html
    html = client.get(reverse("patients:patient-list"), {"site": "AND"}).content.decode()
    assert other_patient.study_id not in html


def test_a_user_of_site_a_cannot_open_site_b_patients(client, andrologist, other_patient):
    client.force_login(andrologist)
    visit = other_patient.visits.get(definition__code="SCR")
    urls = [
        reverse("patients:patient-detail", args=[other_patient.uuid]),
        reverse("patients:identity-edit", args=[other_patient.uuid]),
        reverse("patients:consent-create", args=[other_patient.uuid]),
        reverse("patients:crf-edit", args=[other_patient.uuid, visit.uuid, "eligibility", 1]),
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
        assert client.post(url, {}).status_code == 404, url


def test_a_user_without_any_site_sees_no_patient(client, consented_patient, django_user_model):
    loner = django_user_model.objects.create_user("loner", password="x-very-long-pass")
    client.force_login(loner)
    assert (
        consented_patient.study_id
        not in client.get(reverse("patients:patient-list")).content.decode()
    )
    assert (
        client.get(reverse("patients:patient-detail", args=[consented_patient.uuid])).status_code
        == 404
    )
