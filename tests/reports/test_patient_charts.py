"""One patient's charts: well-formed, self-contained SVG with one point per visit with data,
on the patient page and reusable elsewhere (the casebook PDF)."""

import xml.etree.ElementTree as ET

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.selectors import patient_record
from reports import charts
from reports.selectors import examination_category, patient_charts
from reports.statistics import Step

from ..conftest import enrol, give_consent
from .factories import follow_up, treated

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg"
    return root


def points(root: ET.Element, series: str) -> list[str]:
    """The visits (data-category) of the plotted points of one series."""
    return [
        c.get("data-category") for c in root.iter(f"{SVG}circle") if c.get("data-series") == series
    ]


@pytest.fixture
def followed(site, andrologist):
    """Screening (exam, hormones), M4 with hormones, volumes and no sperm, M6 with sperm in
    the centrifuged pellet only and nothing else."""
    patient = treated(site, andrologist, volumes=("9.5", "11"), baseline=("24", "10", "3.0"))
    follow_up(patient, andrologist, "M4", hormones=("20", "9", "3.3"), volumes=("10", "11.5"))
    follow_up(patient, andrologist, "M6", sperm="PELLET")
    return patient


def by_title(patient, **kwargs) -> dict[str, str]:
    return {c.title: str(c.svg) for c in patient_charts(patient=patient, **kwargs)}


def test_each_chart_is_well_formed_svg_with_one_point_per_visit_with_data(followed):
    svgs = by_title(followed)
    assert set(svgs) == {"FSH and LH", "Total testosterone", "Testicular volume", "Sperm found"}
    hormones = parse(svgs["FSH and LH"])
    assert points(hormones, "FSH") == ["SCR", "M4"]  # M6 has no hormones
    assert points(hormones, "LH") == ["SCR", "M4"]
    assert points(parse(svgs["Total testosterone"]), "Testosterone") == ["SCR", "M4"]
    volume = parse(svgs["Testicular volume"])
    assert points(volume, "Left") == ["SCR", "M4"]  # screening exam, M4 visit form
    assert points(volume, "Right") == ["SCR", "M4"]
    assert points(parse(svgs["Sperm found"]), "sperm") == ["M4", "M6"]  # none at screening


def test_the_points_carry_the_values_entered(followed):
    hormones = parse(by_title(followed)["FSH and LH"])
    titles = [c.find(f"{SVG}title").text for c in hormones.iter(f"{SVG}circle")]
    assert any(t.startswith("FSH, SCR: 24") for t in titles)
    assert any(t.startswith("FSH, M4: 20") for t in titles)
    sperm = parse(by_title(followed)["Sperm found"])
    found = {c.get("data-category"): c.find(f"{SVG}title").text for c in sperm.iter(f"{SVG}circle")}
    assert found["M6"].startswith("M6: Pellet only")
    assert found["M4"].startswith("M4: No sperm")


def test_the_charts_need_nothing_from_outside(followed):
    for svg in by_title(followed).values():
        assert "<script" not in svg
        assert "href" not in svg  # no linked image, font or stylesheet
        assert "url(" not in svg


def test_the_patient_page_shows_the_charts_from_the_record_it_already_loaded(
    client, andrologist, followed
):
    record = patient_record(patient=followed)
    with CaptureQueriesContext(connection) as queries:
        from_record = by_title(followed, record=record)
    assert len(queries) == 0
    assert from_record == by_title(followed)
    client.force_login(andrologist)
    html = client.get(reverse("patients:patient-detail", args=[followed.uuid])).content.decode()
    assert 'data-testid="patient-charts"' in html
    assert html.count('class="edc-chart"') == 4


def test_a_patient_without_values_has_no_charts(client, site, andrologist):
    patient = enrol(site, andrologist)
    give_consent(patient, andrologist)
    assert patient_charts(patient=patient) == []
    client.force_login(andrologist)
    html = client.get(reverse("patients:patient-detail", args=[patient.uuid])).content.decode()
    assert 'data-testid="patient-charts"' not in html


# ---- the chart functions themselves ----------------------------------------------------------


def test_text_is_escaped_and_a_chart_without_data_says_so():
    svg = charts.line_chart(
        title="A <b> & 'c'",
        categories=["M4 <x>"],
        series=[charts.Series("S&P", [None], charts.BLUE)],
        y_label="mL",
    )
    root = parse(svg)
    assert root.find(f"{SVG}title").text == "A <b> & 'c'"
    assert "No data yet" in "".join(root.itertext())
    assert points(root, "S&P") == []


def test_a_series_with_a_gap_plots_only_the_visits_with_values():
    root = parse(
        charts.line_chart(
            title="FSH",
            categories=["SCR", "M4", "M6", "M8"],
            series=[charts.Series("FSH", [24.0, None, 18.5, 17.0], charts.BLUE)],
            y_label="IU/L",
        )
    )
    assert points(root, "FSH") == ["SCR", "M6", "M8"]
    polyline = root.find(f"{SVG}polyline")
    assert len(polyline.get("points").split()) == 3


def test_the_time_to_sperm_curve_steps_up_at_each_first_sperm():
    steps = [Step(0, 0.0, 10), Step(120, 0.1, 10), Step(180, 0.3, 9), Step(360, 0.3, 4)]
    root = parse(
        charts.step_chart(
            title="Time to first sperm",
            steps=steps,
            censored=[(360, 0.3)],
            x_label="Days",
            y_label="%",
        )
    )
    assert points(root, "cumulative") == ["120", "180", "360"]
    assert [p.get("data-censored") for p in root.iter(f"{SVG}path") if p.get("data-censored")] == [
        "360"
    ]


@pytest.mark.parametrize(
    "crypt, grade, expected",
    [("Y", "2", "cryptorchidism"), ("N", "1", "varicocele"), ("N", "0", "normal")],
)
def test_the_examination_category_rule(crypt, grade, expected):
    from patients.models import Examination, MedicalHistory

    exam = Examination(left_varicocele=grade, right_varicocele="0")
    history = MedicalHistory(cryptorchidism=crypt)
    assert examination_category(examination=exam, history=history) == expected
    assert examination_category(examination=exam, history=None) is None
    assert examination_category(examination=None, history=history) is None


def test_the_three_screening_analyses_make_one_point_with_the_best_finding(site, andrologist):
    from ..factories import save_crf
    from ..followup.factories import visit

    patient = treated(site, andrologist)
    scr = visit(patient, "SCR")
    for sequence, seen in ((1, "NONE"), (2, "PELLET"), (3, "NONE")):
        save_crf("semen_analysis", scr, andrologist, sequence=sequence, sperm_seen=seen)
    sperm = parse(by_title(patient)["Sperm found"])
    circles = list(sperm.iter(f"{SVG}circle"))
    assert [c.get("data-category") for c in circles] == ["SCR"]
    assert circles[0].find(f"{SVG}title").text.startswith("SCR: Pellet only")
