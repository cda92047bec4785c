"""The statistician's CSVs: per form, per patient (analysis) and the data dictionary."""

import csv
import io
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core import crf
from exports import datasets
from exports.datasets import form_rows
from exports.metadata import crf_layout
from trial.selectors import active_protocol

from ..conftest import enrol, give_consent
from ..factories import complete_screening, save_crf, today_minus
from ..followup.factories import visit
from .conftest import void_record

EXPORT_URLS = [
    ("exports:form-csv", ["hormones"]),
    ("exports:analysis-csv", []),
    ("exports:adverse-events-csv", []),
    ("exports:concomitant-medications-csv", []),
    ("exports:dictionary-csv", []),
    ("exports:odm-xml", []),
    ("exports:bundle-zip", []),
]


def _get_csv(client, name, *args) -> list[dict]:
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def _parse(item, text: str):
    """A CSV cell back into the Python value the database holds."""
    if text == "":
        return "" if item.data_type == "text" else None
    return {
        "integer": int,
        "float": Decimal,
        "date": date.fromisoformat,
        "time": time.fromisoformat,
        "datetime": datetime.fromisoformat,
    }.get(item.data_type, str)(text)


def test_each_form_csv_round_trips_into_the_values_in_the_database(
    client, coordinator, full_patient
):
    client.force_login(coordinator)
    for definition in crf.all_definitions():
        rows = _get_csv(client, "exports:form-csv", definition.code)
        records = list(definition.model.objects.filter(voided_at__isnull=True))
        assert len(rows) == len(records) > 0, definition.code
        by_key = {
            (r.visit.patient.study_id, r.visit.definition.code, r.visit.sequence, r.sequence): r
            for r in records
        }
        items = [i for i in crf_layout(definition.code).items if i.name != "assessment_date"]
        for row in rows:
            key = (
                row["study_id"],
                row["visit"],
                int(row["visit_sequence"]),
                int(row["form_sequence"]),
            )
            record = by_key[key]
            assert row["site"] == "BEN"
            assert date.fromisoformat(row["assessment_date"]) == record.assessment_date
            for item in items:
                assert _parse(item, row[item.name]) == getattr(record, item.name), (
                    definition.code,
                    item.name,
                )
                if item.is_coded:
                    assert row[f"{item.name}_label"] == item.decode(getattr(record, item.name))


def test_a_form_csv_has_codes_and_labels_and_no_identifier(client, monitor, full_patient):
    client.force_login(monitor)
    response = client.get(reverse("exports:form-csv", args=["semen_analysis"]))
    body = b"".join(response.streaming_content).decode()
    header = body.splitlines()[0].split(",")
    assert header[:6] == [
        "study_id",
        "site",
        "visit",
        "visit_sequence",
        "form_sequence",
        "assessment_date",
    ]
    assert header[header.index("sperm_seen") + 1] == "sperm_seen_label"
    rows = list(csv.DictReader(io.StringIO(body)))
    m4 = next(r for r in rows if r["visit"] == "M4")
    assert (m4["sperm_seen"], m4["sperm_seen_label"]) == (
        "PELLET",
        "In the centrifuged pellet only",
    )
    assert (m4["pellet_examined"], m4["pellet_examined_label"]) == ("Y", "Yes")
    identity = full_patient.identity
    for secret in (identity.full_name, identity.phone, identity.national_id, "date_of_birth"):
        assert secret not in body
    assert "attachment" in response["Content-Disposition"]


def test_voided_forms_and_other_sites_are_left_out(
    client, coordinator, andrologist, full_patient, other_patient, other_andrologist
):
    save_crf("hormones", other_patient.visits.get(definition__code="SCR"), other_andrologist)
    voided = full_patient.visits.get(definition__code="M4").labs_hormoneprofile_set.get()
    void_record(voided, andrologist, "Entered at the wrong visit")
    client.force_login(coordinator)
    rows = _get_csv(client, "exports:form-csv", "hormones")
    assert [(r["study_id"], r["visit"]) for r in rows] == [("BEN-001", "SCR")]


def test_the_analysis_dataset_has_one_row_per_patient_with_baseline_and_last_follow_up(
    client, coordinator, andrologist, site, full_patient
):
    m6 = visit(full_patient, "M6")
    save_crf("hormones", m6, andrologist, fsh=Decimal("15.0"))  # the latest follow-up (today-15)
    later = enrol(site, andrologist)
    give_consent(later, andrologist)
    client.force_login(coordinator)
    rows = _get_csv(client, "exports:analysis-csv")
    assert [r["study_id"] for r in rows] == ["BEN-001", "BEN-002"]
    first, second = rows
    assert first["hormones_fsh_bl"] == "24.10"  # screening, after its correction
    assert first["hormones_fsh_last"] == "18.20"  # M4 was done after M6's sample date
    assert first["hormones_last_visit"] == "M4"
    assert first["semen_analysis_sperm_seen_bl"] == "NONE"
    assert first["semen_analysis_sperm_seen_last"] == "PELLET"
    assert first["biopsy_histology_bl"] == "SCOS"
    assert first["age_at_enrolment"] == str(full_patient.age_at_enrolment)
    assert first["consent_withdrawn_on"] == ""
    assert second["hormones_fsh_bl"] == "" and second["hormones_last_visit"] == ""
    assert "date_of_birth" not in first and "full_name" not in first


def test_the_derived_outcomes_are_columns_of_the_analysis_dataset(
    client, coordinator, full_patient
):
    """Computed by the follow-up rules (one place): sperm in the M4 pellet 3 days after the
    procedure; FSH 24.1 at screening (after its correction) and 18.2 at M4."""
    client.force_login(coordinator)
    row = _get_csv(client, "exports:analysis-csv")[0]
    assert row["responder"] == "Y"
    assert row["first_sperm_day"] == "3"
    assert Decimal(row["fsh_baseline"]) == Decimal("24.1")
    assert Decimal(row["fsh_after"]) == Decimal("18.2")
    assert row["fsh_pct_change"] == "24.5"  # (24.1 - 18.2) / 24.1 x 100
    dictionary = _get_csv(client, "exports:dictionary-csv")
    assert {"dataset": "analysis.csv", "variable": "responder"}.items() <= next(
        r for r in dictionary if r["variable"] == "responder"
    ).items()


def test_a_patient_without_follow_up_has_no_responder_value_yet(
    client, coordinator, consented_patient
):
    client.force_login(coordinator)
    row = _get_csv(client, "exports:analysis-csv")[0]
    assert row["responder"] == "" and row["fsh_pct_change"] == ""


def test_the_data_dictionary_describes_every_exported_column(client, admin_user, full_patient):
    client.force_login(admin_user)
    dictionary = _get_csv(client, "exports:dictionary-csv")
    described = {(r["dataset"], r["variable"]) for r in dictionary}
    keys = {r["variable"] for r in dictionary if r["dataset"] == "every form"}
    for definition in crf.all_definitions():
        columns = datasets.form_columns(crf_layout(definition.code))
        missing = [
            c for c in columns if c not in keys and (f"{definition.code}.csv", c) not in described
        ]
        assert missing == [], definition.code
    analysis = _get_csv(client, "exports:analysis-csv")[0]
    assert {c for c in analysis} <= {v for d, v in described if d == "analysis.csv"}
    fsh = next(r for r in dictionary if (r["dataset"], r["variable"]) == ("hormones.csv", "fsh"))
    assert fsh["label"] == "FSH (IU/L)" and fsh["unit"] == "IU/L" and fsh["type"] == "float"
    assert (fsh["hard_range"], fsh["loinc"], fsh["required"]) == ("0 - 200", "15067-2", "Y")
    abstinence = next(r for r in dictionary if r["variable"] == "abstinence_days")
    assert abstinence["soft_range"] == "2 - 7"
    smoking = next(r for r in dictionary if r["variable"] == "smoking")
    assert smoking["codes"] == "NEVER=Never | CURRENT=Current | FORMER=Former"


def test_a_form_export_reads_the_database_once_whatever_the_number_of_forms(
    coordinator, andrologist, site, full_patient, django_assert_num_queries
):
    for _ in range(3):
        patient = enrol(site, andrologist)
        give_consent(patient, andrologist)
        complete_screening(patient.visits.get(definition__code="SCR"), andrologist)
    with django_assert_num_queries(1):
        rows = list(form_rows(user=coordinator, code="semen_analysis"))
    assert len(rows) == 1 + 4 * 3 + 1  # header, 3 screening analyses each, BEN-001's M4


@pytest.mark.parametrize("role_fixture", ["andrologist", "lab_technician"])
def test_investigators_and_lab_technicians_cannot_export(client, request, role_fixture):
    client.force_login(request.getfixturevalue(role_fixture))
    for name, args in EXPORT_URLS:
        assert client.get(reverse(name, args=args)).status_code == 403, name
    page = client.get(reverse("exports:study")).content.decode()
    assert 'data-testid="exports"' not in page and "Blank PDF" in page


@pytest.mark.parametrize("role_fixture", ["coordinator", "monitor", "admin_user"])
def test_coordinators_monitors_and_admins_can_export(client, request, role_fixture):
    client.force_login(request.getfixturevalue(role_fixture))
    for name, args in EXPORT_URLS:
        assert client.get(reverse(name, args=args)).status_code == 200, name
    assert 'data-testid="exports"' in client.get(reverse("exports:study")).content.decode()


def test_the_analysis_dataset_reads_as_many_queries_for_four_patients_as_for_one(
    coordinator, andrologist, site, full_patient
):
    protocol = active_protocol()
    with CaptureQueriesContext(connection) as one:
        assert len(list(datasets.analysis_rows(user=coordinator, protocol=protocol))) == 2
    for _ in range(3):
        patient = enrol(site, andrologist)
        give_consent(patient, andrologist)
        complete_screening(patient.visits.get(definition__code="SCR"), andrologist)
    with CaptureQueriesContext(connection) as four:
        assert len(list(datasets.analysis_rows(user=coordinator, protocol=protocol))) == 5
    assert len(four) == len(one)


def test_the_adverse_event_log_exports_with_codes_and_labels_and_no_identifier(
    client, coordinator, andrologist, full_patient, other_patient, other_andrologist
):
    from followup.services import adverse_event_create

    from ..followup.factories import ae_values

    event = adverse_event_create(
        patient=full_patient, data=ae_values(onset=today_minus(3)), user=andrologist
    )
    adverse_event_create(
        patient=other_patient, data=ae_values(onset=today_minus(3)), user=other_andrologist
    )
    client.force_login(coordinator)
    rows = _get_csv(client, "exports:adverse-events-csv")
    assert [r["study_id"] for r in rows] == [full_patient.study_id]  # the user's sites only
    row = rows[0]
    assert row["term"] == event.term and row["number"] == "1"
    assert row["ctcae_grade"] == str(event.ctcae_grade)
    assert row["ctcae_grade_label"] == event.get_ctcae_grade_display()
    assert row["onset_date"] == event.onset_date.isoformat()
    assert "Secretname" not in ",".join(row.values())
    client.force_login(andrologist)
    assert client.get(reverse("exports:adverse-events-csv")).status_code == 403


def test_the_concomitant_medication_log_exports_with_codes_and_labels_and_no_identifier(
    client, coordinator, andrologist, full_patient, other_patient, other_andrologist
):
    from followup.services import MEDICATIONS, concomitant_medication_create, log_entry_void

    from ..followup.factories import cm_values

    clomiphene = concomitant_medication_create(
        patient=full_patient,
        data=cm_values(start=today_minus(400), ongoing=False, end_date=today_minus(200)),
        user=andrologist,
    )
    duplicate = concomitant_medication_create(
        patient=full_patient,
        data=cm_values(
            start=today_minus(3),
            medication="Omeprazole",
            indication="Gastritis",
            hormone_class="NONE",
            dose=Decimal("20"),
            frequency="OTHER",
            frequency_other="3 times a week",
        ),
        user=andrologist,
    )
    log_entry_void(MEDICATIONS, entry=duplicate, user=andrologist, reason="Duplicate")
    concomitant_medication_create(
        patient=other_patient, data=cm_values(start=today_minus(3)), user=other_andrologist
    )
    client.force_login(coordinator)
    response = client.get(reverse("exports:concomitant-medications-csv"))
    assert response["Content-Disposition"].startswith(
        'attachment; filename="NCT02025270_concomitant_medications_'
    )
    rows = _get_csv(client, "exports:concomitant-medications-csv")
    assert [r["study_id"] for r in rows] == [full_patient.study_id] * 2  # the user's sites only
    first, second = rows
    assert first["number"] == "1" and first["medication"] == clomiphene.medication
    assert first["indication"] == "Male infertility"
    assert (first["dose"], first["dose_unit"], first["dose_unit_label"]) == ("50.000", "mg", "mg")
    assert (first["route"], first["route_label"]) == ("ORAL", "Oral")
    assert (first["frequency"], first["frequency_label"]) == ("QD", "Once a day")
    assert first["start_date"] == today_minus(400).isoformat()
    assert first["end_date"] == today_minus(200).isoformat() and first["ongoing"] == "False"
    assert first["hormone_class"] == "SERM"
    assert first["hormone_class_label"] == "Clomiphene or other SERM (e.g. tamoxifen)"
    assert first["voided_at"] == "" and first["void_reason"] == ""
    # A voided entry is kept and marked, as in the log.
    assert second["ongoing"] == "True" and second["end_date"] == ""
    assert (second["frequency"], second["frequency_other"]) == ("OTHER", "3 times a week")
    assert second["voided_at"] and second["void_reason"] == "Duplicate"
    assert not {"patient", "id", "uuid", "created_by"} & set(first)
    text = ",".join(v for r in rows for v in r.values())
    identity = full_patient.identity
    assert identity.full_name not in text and identity.phone not in text
    client.force_login(andrologist)
    assert client.get(reverse("exports:concomitant-medications-csv")).status_code == 403


def test_the_exports_page_offers_the_medication_log(client, coordinator):
    client.force_login(coordinator)
    html = client.get(reverse("exports:study")).content.decode()
    assert f'href="{reverse("exports:concomitant-medications-csv")}"' in html
