import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEntry
from monitoring import services
from monitoring.models import DataQuery

from ..factories import save_crf


@pytest.fixture
def exam(screening_visit, andrologist):
    return save_crf("examination", screening_visit, andrologist)


def test_a_query_lives_open_answered_closed_reopened_and_is_audited(
    client, consented_patient, screening_visit, exam, monitor, andrologist
):
    client.force_login(monitor)
    url = reverse(
        "monitoring:query-open",
        args=[consented_patient.uuid, screening_visit.uuid, "examination", 1],
    )
    client.post(url, {"field_name": "weight_kg", "question": "80 kg: please check the source."})
    query = DataQuery.objects.get()
    assert (query.status, query.field_name, query.raised_by) == ("open", "weight_kg", monitor)

    client.force_login(andrologist)
    detail = reverse("monitoring:query-detail", args=[query.uuid])
    client.post(detail, {"action": "answer", "text": "Checked: source says 80 kg."})
    query.refresh_from_db()
    assert query.status == "answered"
    assert (
        client.post(detail, {"action": "close", "text": ""}).status_code == 403
    )  # site staff cannot close

    client.force_login(monitor)
    client.post(detail, {"action": "close", "text": "Thanks."})
    query.refresh_from_db()
    assert query.status == "closed"
    response = client.post(detail, {"action": "reopen", "text": ""})
    assert "Say why the query is re-opened" in response.content.decode()
    client.post(detail, {"action": "reopen", "text": "Weight differs from the visit note."})
    query.refresh_from_db()
    assert query.status == "open"
    assert [m.kind for m in query.messages.all()] == ["question", "answer", "close", "reopen"]
    statuses = AuditEntry.objects.filter(action="query", field_name="status").values_list(
        "new_value", flat=True
    )
    assert list(statuses) == ["open", "answered", "closed", "open"]


def test_open_queries_show_on_the_patient_matrix_form_and_monitor_list(
    client, consented_patient, exam, monitor, andrologist
):
    query = services.query_open(
        record=exam, field_name="height_cm", question="Height in cm?", user=monitor
    )
    client.force_login(andrologist)
    page = client.get(
        reverse("patients:patient-detail", args=[consented_patient.uuid])
    ).content.decode()
    assert 'data-testid="open-query"' in page
    form = client.get(
        reverse(
            "patients:crf-edit", args=[consented_patient.uuid, exam.visit.uuid, "examination", 1]
        )
    ).content.decode()
    assert "Height in cm?" in form
    client.force_login(monitor)
    listing = client.get(reverse("monitoring:query-list")).content.decode()
    assert "Height in cm?" in listing and consented_patient.study_id in listing
    services.query_answer(query=query, text="Yes", user=andrologist)
    services.query_close(query=query, text="", user=monitor)
    assert "Height in cm?" not in client.get(reverse("monitoring:query-list")).content.decode()


def test_only_monitors_raise_queries(client, consented_patient, exam, andrologist, coordinator):
    url = reverse(
        "monitoring:query-open", args=[consented_patient.uuid, exam.visit.uuid, "examination", 1]
    )
    for user in (andrologist, coordinator):
        client.force_login(user)
        assert client.get(url).status_code == 403


def test_another_sites_queries_are_invisible(
    client, other_patient, other_andrologist, andrologist, monitor
):
    visit = other_patient.visits.get(definition__code="SCR")
    record = save_crf("examination", visit, other_andrologist)
    query = services.query_open(record=record, field_name="", question="Whole form?", user=monitor)
    client.force_login(andrologist)
    assert client.get(reverse("monitoring:query-detail", args=[query.uuid])).status_code == 404
    assert "Whole form?" not in client.get(reverse("monitoring:query-list")).content.decode()


def test_a_query_needs_a_question_and_an_existing_field(exam, monitor):
    with pytest.raises(ValidationError):
        services.query_open(record=exam, field_name="weight_kg", question=" ", user=monitor)
    with pytest.raises(ValidationError):
        services.query_open(record=exam, field_name="no_such_field", question="?", user=monitor)
