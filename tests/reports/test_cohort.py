"""Acceptance: `seed_demo --cohort` builds the trial's 87 patients through the services and the
results page shows 18/87 = 20.7% and every count of the cohort table (reports/cohort.py). The
tests read the table, so replacing its placeholder counts by the paper's needs no test edit."""

import copy
import csv
import io
import time
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from audit.models import AuditEntry
from demo.cohort import cohort_cases
from patients.models import Patient
from reports.cohort import COHORT_TABLE_1, cohort_table_errors
from reports.selectors import CHARACTERISTICS

from ..conftest import enrol
from .test_results_page import cell, pdf_text
from .test_results_pdf import built as results_pdf_built

GROUPS = ("responders", "non_responders")


def test_the_table_adds_up_and_keeps_the_confirmed_18_of_87():
    assert cohort_table_errors(COHORT_TABLE_1) == []
    assert (COHORT_TABLE_1["patients"], COHORT_TABLE_1["responders"]) == (87, 18)
    levels = {ch.code: {value for value, _ in ch.levels} for ch in CHARACTERISTICS}
    for group in GROUPS:
        for code, counts in COHORT_TABLE_1["groups"][group].items():
            assert set(counts) <= levels[code], f"{code}: unknown category in the table"


def test_an_inconsistent_table_is_refused():
    table = copy.deepcopy(COHORT_TABLE_1)
    table["groups"]["responders"]["azf"]["AZFc"] += 1
    assert cohort_table_errors(table) == ["responders azf: counts add up to 19, not 18."]
    with pytest.raises(ValueError, match="inconsistent"):
        cohort_cases(table=table)


def test_the_cases_have_exactly_the_tables_counts_and_are_the_same_every_time():
    cases = cohort_cases()
    assert cases == cohort_cases()
    assert len(cases) == 87
    assert Counter(c.site for c in cases) == {"BEN": 44, "AND": 43}
    for group in GROUPS:
        members = [c for c in cases if c.group == group]
        for code, counts in COHORT_TABLE_1["groups"][group].items():
            found = Counter(getattr(c, code) for c in members)
            assert found == counts, f"{group} {code}"
    # Abnormal karyotypes go with small testes.
    assert all(c.testicular_size == "small" for c in cases if c.karyotype == "47,XXY")


def test_seeding_the_cohort_leaves_a_database_with_patients_alone(site, andrologist):
    enrol(site, andrologist)
    out = io.StringIO()
    call_command("seed_demo", "--cohort", stdout=out)
    assert Patient.objects.count() == 1
    assert "Patients already exist" in out.getvalue()


def test_the_results_page_on_the_seeded_cohort_shows_every_count_of_the_table(
    client, protocol, tmp_path
):
    out = io.StringIO()
    started = time.monotonic()
    call_command("seed_demo", "--cohort", stdout=out)
    seconds = time.monotonic() - started
    print(f"seed_demo --cohort took {seconds:.0f} s")  # shown with pytest -s
    assert "Trial cohort created: 87 patients" in out.getvalue()
    patients = Patient.objects.all()
    assert patients.count() == 87
    # Written through the services: every patient has an audit trail.
    assert (
        AuditEntry.objects.filter(patient__in=patients).values("patient").distinct().count() == 87
    )

    client.force_login(get_user_model().objects.get(username="monitor"))
    html = client.get(reverse("reports:results")).content.decode()
    assert 'data-testid="headline">18/87 = 20.7%<' in html
    assert 'data-testid="responders-overall">18/87 = 20.7%<' in html
    assert "not yet evaluable: 0" in html
    sizes = {"responders": 18, "non_responders": 69}
    for group in GROUPS:
        for code, counts in COHORT_TABLE_1["groups"][group].items():
            for level, count in counts.items():
                shown = cell(html, f"overall:{code}:{level}:{group}")
                assert shown == [str(count), f"({100 * count / sizes[group]:.1f}%)"], (
                    f"{group} {code} {level}"
                )

    csv_rows = list(
        csv.DictReader(io.StringIO(client.get(reverse("reports:results-csv")).getvalue().decode()))
    )
    evaluable = next(r for r in csv_rows if r["category"].startswith("evaluable"))
    assert (evaluable["responders_n"], evaluable["responders_percent"]) == ("18", "20.7")
    assert (evaluable["all_n"], evaluable["non_responders_n"]) == ("87", "69")

    _, pdf, _ = results_pdf_built(client)
    assert "18/87 = 20.7%" in pdf_text(pdf, tmp_path)
