from decimal import Decimal

from django.urls import reverse

from patients.selectors import Stage, patient_list, patient_record

from ..conftest import enrol, give_consent
from ..factories import complete_screening, save_crf

SCREENING_SLOTS = 10  # eligibility, history, exam, semen x3, hormones, karyotype, AZF, biopsy


def test_the_matrix_shows_missing_then_entered_then_complete(
    consented_patient, screening_visit, andrologist
):
    record = patient_record(patient=consented_patient)
    scr = record.rows[0]
    assert scr.definition.code == "SCR" and len(scr.cells) == SCREENING_SLOTS
    assert {c.status for c in scr.cells} == {"missing"}
    assert record.next_due.definition.code == "SCR"
    complete_screening(screening_visit, andrologist)
    record = patient_record(patient=consented_patient)
    assert record.rows[0].complete
    assert record.azoospermia_confirmed is True
    assert record.next_due is None or record.next_due.definition.code != "SCR"


def test_a_flagged_value_marks_its_cell(consented_patient, screening_visit, andrologist):
    save_crf("semen_analysis", screening_visit, andrologist, sequence=2, abstinence_days=12)
    cells = {
        (c.code, c.sequence): c for c in patient_record(patient=consented_patient).rows[0].cells
    }
    assert cells[("semen_analysis", 2)].status == "flagged"
    assert cells[("semen_analysis", 1)].status == "missing"


def test_azoospermia_is_not_confirmed_when_sperm_is_found_in_a_pellet(
    consented_patient, screening_visit, andrologist
):
    save_crf("semen_analysis", screening_visit, andrologist, sequence=1)
    save_crf("semen_analysis", screening_visit, andrologist, sequence=2)
    assert patient_record(patient=consented_patient).azoospermia_confirmed is None
    save_crf(
        "semen_analysis",
        screening_visit,
        andrologist,
        sequence=3,
        sperm_seen="PELLET",
        concentration=Decimal("0"),
    )
    assert patient_record(patient=consented_patient).azoospermia_confirmed is False


def test_the_patient_page_uses_a_bounded_number_of_queries(
    client, site, andrologist, django_assert_max_num_queries
):
    """One query per CRF type of the protocol, whatever the number of patients or forms."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    empty = enrol(site, andrologist)
    give_consent(empty, andrologist)
    for _ in range(5):
        give_consent(enrol(site, andrologist), andrologist)
    full = enrol(site, andrologist)
    give_consent(full, andrologist)
    complete_screening(full.visits.get(definition__code="SCR"), andrologist)
    client.force_login(andrologist)
    client.get(reverse("patients:patient-detail", args=[empty.uuid]))  # warm caches
    with CaptureQueriesContext(connection) as for_empty:
        client.get(reverse("patients:patient-detail", args=[empty.uuid]))
    # 32: the session guard (a locked or deactivated account is signed out) and the session's
    # verified device (two-factor sign-in) are one each per request.
    with django_assert_max_num_queries(32), CaptureQueriesContext(connection) as for_full:
        response = client.get(reverse("patients:patient-detail", args=[full.uuid]))
    assert len(for_full) == len(for_empty)
    assert response.content.decode().count('data-status="entered"') == SCREENING_SLOTS


def test_the_list_filters_by_stage_flags_site_and_study_id(
    site, andrologist, monitor, other_patient
):
    awaiting = enrol(site, andrologist)
    eligible = enrol(site, andrologist)
    give_consent(eligible, andrologist)
    complete_screening(eligible.visits.get(definition__code="SCR"), andrologist)
    flagged = enrol(site, andrologist)
    give_consent(flagged, andrologist)
    save_crf(
        "semen_analysis", flagged.visits.get(definition__code="SCR"), andrologist, abstinence_days=9
    )
    stages = {p.study_id: p.stage for p in patient_list(user=andrologist)}
    assert stages == {
        awaiting.study_id: Stage.AWAITING_CONSENT,
        eligible.study_id: Stage.ELIGIBLE,
        flagged.study_id: Stage.SCREENING,
    }
    assert [p.study_id for p in patient_list(user=andrologist, flagged=True)] == [flagged.study_id]
    assert [p.study_id for p in patient_list(user=andrologist, stage=Stage.ELIGIBLE)] == [
        eligible.study_id
    ]
    assert [p.study_id for p in patient_list(user=monitor, site_code="AND")] == [
        other_patient.study_id
    ]
    assert [p.study_id for p in patient_list(user=andrologist, search="002")] == [eligible.study_id]


def test_the_list_paginates(client, site, andrologist):
    for _ in range(27):
        enrol(site, andrologist)
    client.force_login(andrologist)
    first = client.get(reverse("patients:patient-list")).content.decode()
    assert "Page 1 of 2" in first and "BEN-025" in first and "BEN-026" not in first
    second = client.get(reverse("patients:patient-list"), {"page": 2}).content.decode()
    assert "BEN-027" in second
    beyond = client.get(reverse("patients:patient-list"), {"page": 99, "stage": "nonsense"})
    assert beyond.status_code == 200 and "No patients match." in beyond.content.decode()


def test_the_home_page_counts_patients_by_stage(client, consented_patient, patient, andrologist):
    client.force_login(andrologist)
    html = client.get(reverse("home")).content.decode()
    assert 'data-testid="patient-total">1<' in html
    assert "Screening" in html


def test_the_patient_page_shows_each_visits_status_at_a_glance(client, site, andrologist):
    from ..followup.factories import treated_patient

    patient = treated_patient(site, andrologist, procedure_days_ago=140)  # M4 window closed
    client.force_login(andrologist)
    html = client.get(reverse("patients:patient-detail", args=[patient.uuid])).content.decode()
    m4 = html[html.index('data-visit="M4"') :]
    m4 = m4[: m4.index("</tr>")]
    assert "Overdue" in m4
    m6 = html[html.index('data-visit="M6"') :]
    assert "Upcoming" in m6[: m6.index("</tr>")]
