"""The results page: who may see it, what it counts, the p-values it shows (SciPy's, by the
stated rules), the site filter, n/a for empty groups, a bounded number of queries, and the
CSV download of the same tables (the PDF is a background job: test_results_pdf.py)."""

import csv
import html as html_lib
import io
import re
import subprocess

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from scipy import stats

from core.pdf import static_url_fetcher
from reports.selectors import study_results
from reports.statistics import RULES

from ..conftest import enrol, give_consent
from .factories import follow_up, treated

RESULT_URLS = ("reports:results", "reports:results-csv")


def cell(html: str, key: str) -> str:
    """The text of the table cell marked data-cell="key" (or data-test="key")."""
    match = re.search(rf'data-(?:cell|test)="{re.escape(key)}"[^>]*>(.*?)</td>', html, re.S)
    assert match, f"no cell {key}"
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split()


def text(html: str, key: str) -> str:
    return " ".join(cell(html, key))


@pytest.fixture
def study(site, andrologist):
    """At BEN: 2 responders, 2 non-responders, 1 treated without follow-up yet, 1 enrolled
    but not treated."""
    r1 = treated(site, andrologist, age=30, volumes=("10", "14"), baseline=("24", "10", "3.0"))
    follow_up(r1, andrologist, sperm="PELLET", hormones=("16", "8", "3.9"))
    r2 = treated(
        site,
        andrologist,
        age=36,
        histology="MA_PRIMARY",
        volumes=("14", "15"),
        baseline=("20", "9", "3.4"),
    )
    follow_up(r2, andrologist, sperm="FRESH", hormones=("15", "7", "4.1"))
    n1 = treated(site, andrologist, age=41, cryptorchidism=True, baseline=("30", "12", "2.8"))
    follow_up(n1, andrologist, hormones=("29", "12", "2.9"))
    n2 = treated(site, andrologist, age=28, varicocele_grade="2", baseline=("26", "11", "3.1"))
    follow_up(n2, andrologist, hormones=("25", "11", "3.0"))
    waiting = treated(site, andrologist, procedure_days_ago=20)
    not_treated = enrol(site, andrologist)
    give_consent(not_treated, andrologist)
    return {"responders": [r1, r2], "non_responders": [n1, n2], "waiting": waiting}


def page(client, user, **params) -> str:
    client.force_login(user)
    response = client.get(reverse("reports:results"), params)
    assert response.status_code == 200
    return response.content.decode()


# ---- who may see it --------------------------------------------------------------------------


@pytest.mark.parametrize("url", RESULT_URLS)
@pytest.mark.parametrize("role", ["andrologist", "monitor", "admin_user"])
def test_andrologists_monitors_and_admins_get_the_results(client, request, role, url):
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse(url)).status_code == 200


@pytest.mark.parametrize("url", RESULT_URLS)
@pytest.mark.parametrize("role", ["coordinator", "lab_technician"])
def test_coordinators_and_lab_technicians_are_refused(client, request, role, url):
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse(url)).status_code == 403


def test_the_results_link_is_in_the_menu_of_readers_only(client, monitor, coordinator):
    link = f'href="{reverse("reports:results")}"'
    client.force_login(monitor)
    assert link in client.get(reverse("home")).content.decode()
    client.force_login(coordinator)
    assert link not in client.get(reverse("home")).content.decode()


# ---- what it counts --------------------------------------------------------------------------


def test_the_page_counts_responders_and_patients_not_yet_evaluable_apart(
    client, andrologist, study
):
    html = page(client, andrologist)
    assert 'data-testid="headline">2/4 = 50.0%<' in html
    assert "not yet evaluable: 1" in html
    assert re.search(r'data-testid="not-treated">1 not treated', html)
    assert cell(html, "overall:testicular_size:small:responders") == ["1", "(50.0%)"]
    assert cell(html, "overall:testicular_size:normal:responders") == ["1", "(50.0%)"]
    assert cell(html, "overall:testicular_size:small:non_responders") == ["2", "(100.0%)"]
    assert cell(html, "overall:examination:cryptorchidism:non_responders") == ["1", "(50.0%)"]
    assert cell(html, "overall:examination:varicocele:non_responders") == ["1", "(50.0%)"]
    assert cell(html, "overall:biopsy:MA_PRIMARY:responders") == ["1", "(50.0%)"]
    # Categories nobody has are not listed.
    assert "overall:karyotype:47,XXY" not in html


def test_the_subgroups_are_the_scos_and_the_arrest_patients(client, andrologist, study):
    html = page(client, andrologist)
    assert 'data-testid="responders-scos">1/3 = 33.3%<' in html
    assert 'data-testid="responders-arrest">1/1 = 100.0%<' in html
    # No non-responder with an arrest: the comparisons of that table are n/a.
    assert text(html, "arrest:age").startswith("n/a")
    assert text(html, "arrest:fsh:before:non_responders").startswith("n/a")


def test_each_p_value_is_scipys_on_the_same_patients_with_the_test_named(
    client, andrologist, study
):
    html = page(client, andrologist)
    ages = {
        group: [p.age_at_enrolment for p in patients]
        for group, patients in study.items()
        if group != "waiting"
    }
    # 2 patients per group: fewer than 3, so Mann-Whitney (the stated rule).
    p_age = stats.mannwhitneyu(
        ages["responders"], ages["non_responders"], alternative="two-sided"
    ).pvalue
    assert text(html, "overall:age") == f"{p_age:.3f} Mann-Whitney U, n = 4"
    # Testicular size: normal/small x responders/non-responders; expected counts < 5.
    p_size = stats.fisher_exact([[1, 0], [1, 2]]).pvalue
    assert text(html, "overall:testicular_size") == f"{p_size:.3f} Fisher's exact, n = 4"
    # FSH % change: responders 33.3 and 25.0, non-responders 3.3 and 3.8.
    p_change = stats.mannwhitneyu([33.3, 25.0], [3.3, 3.8], alternative="two-sided").pvalue
    assert text(html, "overall:fsh:change") == f"{p_change:.3f} Mann-Whitney U, n = 4"
    # Within the responders, FSH before vs after: 2 pairs, so Wilcoxon signed-rank.
    p_within = stats.wilcoxon([24, 20], [16, 15]).pvalue
    assert text(html, "overall:fsh:within:responders") == (
        f"{p_within:.3f} Wilcoxon signed-rank, n = 2"
    )
    mean, sd = np.mean([33.3, 25.0]), np.std([33.3, 25.0], ddof=1)
    assert text(html, "overall:fsh:change:responders") == f"{mean:.1f} ± {sd:.1f}% n = 2"


def test_the_page_states_the_rules_of_its_tests(client, andrologist, study):
    html = html_lib.unescape(page(client, andrologist))
    for name, rule in RULES:
        assert name in html and rule in html


# ---- the site filter -------------------------------------------------------------------------


@pytest.fixture
def other_site_responder(other_site, other_andrologist):
    patient = treated(other_site, other_andrologist)
    follow_up(patient, other_andrologist, sperm="FRESH")
    return patient


def test_a_monitor_sees_both_sites_or_filters_one(client, monitor, study, other_site_responder):
    assert 'data-testid="headline">3/5 = 60.0%<' in page(client, monitor)
    html = page(client, monitor, site="AND")
    assert 'data-testid="headline">1/1 = 100.0%<' in html
    assert "site AND" in html
    assert 'data-testid="headline">2/4 = 50.0%<' in page(client, monitor, site="BEN")


def test_another_sites_code_shows_only_the_users_own_site(
    client, andrologist, study, other_site_responder
):
    html = page(client, andrologist, site="AND")
    assert 'data-testid="headline">2/4 = 50.0%<' in html
    assert 'data-testid="scope">your site<' in html


# ---- nothing to compare ----------------------------------------------------------------------


def test_a_study_without_patients_shows_n_a_everywhere(client, andrologist):
    html = page(client, andrologist)
    assert 'data-testid="headline">n/a<' in html
    assert text(html, "overall:age:responders").startswith("n/a")
    assert text(html, "overall:testicular_size").startswith("n/a")
    assert text(html, "overall:fsh:within:non_responders").startswith("n/a")
    assert "No follow-up semen analysis yet" in html  # the time-to-sperm chart


def test_a_group_without_patients_shows_n_a_not_an_error(client, site, andrologist):
    patient = treated(site, andrologist)
    follow_up(patient, andrologist, hormones=("20", "9", "3.5"))
    html = page(client, andrologist)
    assert 'data-testid="headline">0/1 = 0.0%<' in html
    assert text(html, "overall:age:responders") == "n/a n = 0"
    assert text(html, "overall:age").startswith("n/a A group has no patient")
    assert text(html, "overall:fsh:before:non_responders") == "24.0 ± n/a n = 1"


# ---- bounded queries -------------------------------------------------------------------------


def test_the_page_uses_a_bounded_number_of_queries(
    client, site, andrologist, django_assert_max_num_queries
):
    def patient(sperm):
        p = treated(site, andrologist)
        follow_up(p, andrologist, sperm=sperm, hormones=("20", "9", "3.5"), volumes=("9", "10"))

    patient("PELLET")
    patient("NONE")
    client.force_login(andrologist)
    url = reverse("reports:results")
    with CaptureQueriesContext(connection) as computing_few:
        client.get(url)  # computed (inline, as in the demo) and stored
    with CaptureQueriesContext(connection) as few:
        client.get(url)  # the stored computation
    for sperm in ("FRESH", "NONE", "NONE", "PELLET"):
        patient(sperm)
    # The data changed: computed again, in about as many queries as for 2 patients (the
    # data version read apart when nothing is stored; the older computation deleted).
    with CaptureQueriesContext(connection) as computing_more:
        response = client.get(url)
    assert 'data-testid="headline">3/6 = 50.0%<' in response.content.decode()
    assert len(computing_more) <= len(computing_few) + 2
    # Then read from the store: 10 statements and the test transaction's savepoints
    # (tests/reports/test_results_snapshots.py counts them), whatever the number of patients.
    with django_assert_max_num_queries(14), CaptureQueriesContext(connection) as more:
        response = client.get(url)
    assert 'data-testid="headline">3/6 = 50.0%<' in response.content.decode()
    assert len(more) == len(few)


def test_the_results_load_each_model_once(andrologist, study, django_assert_max_num_queries):
    # sites, patients, injections, follow-up semen, hormones, 5 screening CRFs
    with django_assert_max_num_queries(10):
        study_results(user=andrologist)


# ---- downloads -------------------------------------------------------------------------------


def test_the_csv_has_the_numbers_of_the_tables(client, andrologist, study):
    client.force_login(andrologist)
    response = client.get(reverse("reports:results-csv"))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    results = study_results(user=andrologist)
    overall = results.overall

    def row(item, category, subgroup="All treated patients"):
        return next(
            r
            for r in rows
            if (r["subgroup"], r["item"], r["category"]) == (subgroup, item, category)
        )

    patients = row("Patients", "evaluable (responders / non-responders)")
    assert (patients["responders_n"], patients["responders_percent"]) == ("2", "50.0")
    assert row("Patients", "not yet evaluable (treated, no follow-up semen analysis)")[
        "all_n"
    ] == str(overall.not_evaluable)
    small = row("Testicular size", "Small")
    assert (small["responders_n"], small["responders_percent"]) == ("1", "50.0")
    assert (small["non_responders_n"], small["non_responders_percent"]) == ("2", "100.0")
    normal = row("Testicular size", "Normal")
    assert normal["test"] == "Fisher's exact"
    assert float(normal["p_value"]) == pytest.approx(stats.fisher_exact([[1, 0], [1, 2]]).pvalue)
    age = row("Age at enrolment (years)", "mean, SD")
    assert float(age["responders_mean"]) == pytest.approx(overall.age.responders.mean, abs=0.005)
    assert float(age["p_value"]) == pytest.approx(overall.age.test.p, rel=1e-3)
    within = row("FSH (IU/L)", "before vs after, responders")
    assert (within["test"], within["patients_in_test"]) == ("Wilcoxon signed-rank", "2")
    scos = row(
        "Patients", "evaluable (responders / non-responders)", "Sertoli-cell-only syndrome (SCOS)"
    )
    assert (scos["responders_n"], scos["non_responders_n"]) == ("1", "2")


def pdf_text(content: bytes, tmp_path) -> str:
    path = tmp_path / "results.pdf"
    path.write_bytes(content)
    return subprocess.run(
        ["/usr/bin/pdftotext", "-layout", str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_the_pdf_renderer_reads_static_files_from_disk_and_nothing_else():
    css = static_url_fetcher("https://edc.invalid/static/reports/results-print.css")
    with css["file_obj"] as handle:
        assert b"@page" in handle.read()
    with pytest.raises(ValueError, match="Only static files"):
        static_url_fetcher("https://example.org/tracker.png")


def test_time_to_first_sperm_counts_first_sperm_and_censors_the_others(andrologist, study):
    from reports.selectors import cohort_patients, results_patients, time_to_first_sperm

    cohort = cohort_patients(patients=results_patients(user=andrologist))
    steps, censored = time_to_first_sperm(cohort=cohort)
    # Both responders had sperm at M4 (day 120); both non-responders were last seen then.
    assert [(s.day, s.proportion, s.at_risk) for s in steps] == [(0, 0.0, 4), (120, 0.5, 4)]
    assert censored == [(120, 0.5), (120, 0.5)]
