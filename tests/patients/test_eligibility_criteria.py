"""The eligibility form asks the criteria the protocol file lists, in its words: another
protocol's criteria are configuration, not code (CDISC IE codes INCL01.., EXCL01..)."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from exports.metadata import crf_layout
from patients.models import Eligibility, Patient
from patients.selectors import Stage, with_stage
from patients.services import crf_save
from trial import protocol_file
from trial.services import protocol_load

from ..conftest import enrol, give_consent, make_user
from ..factories import save_crf

OTHER_CRITERIA = {
    "inclusion": [
        {"code": "INCL01", "text": "Men aged 20 to 45"},
        {"code": "INCL02", "text": "Testicular volume at least 8 mL on each side"},
    ],
    "exclusion": [{"code": "EXCL01", "text": "Klinefelter syndrome (47,XXY)"}],
}


@pytest.fixture
def other_protocol_visit(protocol, settings, tmp_path):
    """A patient screened under another protocol of the same shape, with its own criteria."""
    data = protocol_file.read(settings.PROTOCOL_FILE)
    data.update(registry_id="NCT99999999", short_name="OTHER", eligibility=OTHER_CRITERIA)
    data["sites"] = [{"code": "XYZ", "name": "Another clinic"}]
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data))
    other = protocol_load(path=path)
    site = other.sites.get()
    doctor = make_user("xena", "Andrologist", site)
    patient = enrol(site, doctor)
    give_consent(patient, doctor)
    return patient.visits.get(definition__code="SCR"), doctor


def _answers(**answers):
    return {"assessment_date": timezone.localdate() - timedelta(days=1), **answers}


def test_the_form_asks_this_protocols_criteria_in_its_words(other_protocol_visit, client):
    visit, doctor = other_protocol_visit
    client.force_login(doctor)
    url = reverse("patients:crf-edit", args=[visit.patient.uuid, visit.uuid, "eligibility", 1])
    html = client.get(url).content.decode()
    assert "Men aged 20 to 45" in html and "Klinefelter syndrome (47,XXY)" in html
    assert "Primary infertility" not in html  # the first protocol's criterion
    assert 'name="incl02"' in html and 'name="incl03"' not in html and 'name="excl02"' not in html
    assert "---------" not in html  # Yes or No, no blank choice
    # A criterion left unanswered: a message on the form, and what was typed is kept.
    response = client.post(url, {"assessment_date": "", "incl01": "Y", "excl01": "N"})
    page = response.content.decode()
    assert response.status_code == 200 and "This field is required." in page
    incl01 = re.findall(r'<input[^>]*name="incl01"[^>]*>', page)
    assert [("checked" in tag) for tag in incl01] == [True, False]  # Yes kept, No not
    assert not Eligibility.objects.exists()


def test_eligible_is_computed_from_this_protocols_criteria_only(other_protocol_visit):
    visit, doctor = other_protocol_visit
    record = crf_save(
        record=Eligibility(visit=visit, **_answers(incl01="Y", incl02="Y", excl01="N")),
        user=doctor,
    )
    assert record.eligible
    record.excl01 = "Y"
    assert not record.eligible


def test_the_service_refuses_an_unanswered_criterion_and_an_answer_to_none(
    other_protocol_visit,
):
    visit, doctor = other_protocol_visit
    with pytest.raises(ValidationError) as missing:
        crf_save(record=Eligibility(visit=visit, **_answers(incl01="Y")), user=doctor)
    assert set(missing.value.message_dict) == {"incl02", "excl01"}
    with pytest.raises(ValidationError) as extra:
        crf_save(
            record=Eligibility(
                visit=visit, **_answers(incl01="Y", incl02="Y", excl01="N", excl03="N")
            ),
            user=doctor,
        )
    assert extra.value.message_dict == {"excl03": ["The protocol has no criterion EXCL03."]}


def test_the_pdfs_and_exports_describe_the_protocols_criteria(protocol):
    layout = crf_layout("eligibility")
    labels = {i.name: i.label for i in layout.items}
    assert labels["incl01"] == "Primary infertility"
    assert labels["excl03"].startswith("Bleeding disorder")
    assert [n for n in labels if n.startswith(("incl", "excl"))] == [
        *(f"incl{n:02d}" for n in range(1, 6)),
        *(f"excl{n:02d}" for n in range(1, 5)),
    ]


def test_the_stage_follows_the_criteria_of_each_patients_protocol(
    screening_visit, andrologist, other_protocol_visit, client
):
    save_crf("eligibility", screening_visit, andrologist, excl03="Y")  # bleeding disorder
    visit, doctor = other_protocol_visit
    crf_save(
        record=Eligibility(visit=visit, **_answers(incl01="Y", incl02="Y", excl01="N")),
        user=doctor,
    )
    stages = dict(with_stage(Patient.objects.all()).values_list("site__code", "stage"))
    assert stages == {"BEN": Stage.SCREEN_FAILURE, "XYZ": Stage.ELIGIBLE}


@pytest.mark.parametrize(
    ("eligibility", "message"),
    [
        (None, "missing key 'eligibility'"),
        ({"inclusion": []}, "at least one inclusion criterion"),
        ({"inclusion": [{"code": "INC1", "text": "x"}]}, "'INC1' is not INCL01..INCL10"),
        ({"inclusion": [{"code": "INCL11", "text": "x"}]}, "'INCL11' is not INCL01..INCL10"),
        (
            {"inclusion": [{"code": "INCL01", "text": "a"}, {"code": "INCL01", "text": "b"}]},
            "INCL01 is listed twice",
        ),
        (
            {"inclusion": [{"code": "INCL01", "text": "a"}], "exclusion": [{"code": "EXCL01"}]},
            "EXCL01 has no text",
        ),
        ({"inclusion": ["Primary infertility"]}, 'is {"code": ..., "text": ...}, not'),
    ],
)
def test_a_protocol_file_with_broken_criteria_is_refused(settings, eligibility, message):
    data = protocol_file.read(settings.PROTOCOL_FILE)
    data.pop("eligibility")
    if eligibility is not None:
        data["eligibility"] = eligibility
    errors, _warnings = protocol_file.problems(data)
    assert any(message in e for e in errors), errors


def test_the_coordinators_exports_carry_the_protocols_criteria(
    client, coordinator, screening_visit, andrologist
):
    save_crf("eligibility", screening_visit, andrologist, excl03="Y")
    client.force_login(coordinator)

    def rows(name, *args):
        response = client.get(reverse(name, args=args))
        assert response.status_code == 200
        text = b"".join(response.streaming_content).decode()
        return list(csv.DictReader(io.StringIO(text)))

    (record,) = rows("exports:form-csv", "eligibility")
    assert (record["incl01"], record["excl03"]) == ("Y", "Y")
    assert "incl06" not in record and "excl05" not in record  # slots the protocol does not use
    dictionary = {
        r["variable"]: r
        for r in rows("exports:dictionary-csv")
        if r["dataset"] == "eligibility.csv"
    }
    assert dictionary["excl03"]["label"].startswith("Bleeding disorder")
    assert (dictionary["incl01"]["code_list"], dictionary["incl01"]["codes"]) == (
        "NY",
        "Y=Yes | N=No",
    )
    assert "incl06" not in dictionary
