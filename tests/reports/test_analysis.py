"""reports.analysis: a plan's rows computed on plain values. On a synthetic cohort built from
PUBLISHED-TABLES.md's subgroup counts (and hormone values drawn to Tables 2 and 3's printed
means and SDs), the "as published" plan reproduces every count of Tables 1-3, Table 1's five
categorical p-values, Tables 2-3's hormone means and SDs and % changes, and flags exactly the
printed cells that the data cannot give. No database."""

import numpy as np
import pytest
from django.conf import settings
from scipy import stats

from reports import methods, plan, published
from reports.analysis import GroupValues, compute_row
from reports.published import agrees

pytestmark = pytest.mark.filterwarnings("error")

PROTOCOL_DIR = settings.PROTOCOL_FILE.parent
ARREST = ("MA_PRIMARY", "MA_SECONDARY", "MA_SPERMATID")

# PUBLISHED-TABLES.md, "Subgroup counts implied by Tables 1-3 together".
SUBGROUPS = {
    ("failed", "scos"): {
        "biopsy": {"SCOS": 55},
        "testicular_size": {"normal": 30, "small": 25},
        "examination": {"normal": 48, "varicocele": 6, "cryptorchidism": 1},
        "karyotype": {"46,XY": 44, "47,XXY": 11},
        "azf": {"NONE": 52, "AZFa": 0, "AZFb": 2, "AZFc": 1},
    },
    ("failed", "arrest"): {
        "biopsy": {"MA_PRIMARY": 9, "MA_SECONDARY": 3, "MA_SPERMATID": 2},
        "testicular_size": {"normal": 5, "small": 9},
        "examination": {"normal": 13, "varicocele": 1, "cryptorchidism": 0},
        "karyotype": {"46,XY": 14, "47,XXY": 0},
        "azf": {"NONE": 13, "AZFa": 1, "AZFb": 0, "AZFc": 0},
    },
    ("success", "scos"): {
        "biopsy": {"SCOS": 11},
        "testicular_size": {"normal": 7, "small": 4},
        "examination": {"normal": 10, "varicocele": 0, "cryptorchidism": 1},
        "karyotype": {"46,XY": 11, "47,XXY": 0},
        "azf": {"NONE": 11, "AZFa": 0, "AZFb": 0, "AZFc": 0},
    },
    ("success", "arrest"): {
        "biopsy": {"MA_PRIMARY": 2, "MA_SECONDARY": 4, "MA_SPERMATID": 1},
        "testicular_size": {"normal": 5, "small": 2},
        "examination": {"normal": 7, "varicocele": 0, "cryptorchidism": 0},
        "karyotype": {"46,XY": 7, "47,XXY": 0},
        "azf": {"NONE": 7, "AZFa": 0, "AZFb": 0, "AZFc": 0},
    },
}
TABLE_OF = {"scos": "table2", "arrest": "table3"}


def exactly(mean: float, sd: float, n: int) -> list[float]:
    """n values with exactly this mean and sample SD (normal quantiles, rescaled)."""
    z = stats.norm.ppf((np.arange(n) + 0.5) / n)
    z = (z - z.mean()) / z.std(ddof=1)
    return list(mean + sd * z)


@pytest.fixture(scope="module")
def paper():
    return published.load_for("NCT02025270")


@pytest.fixture(scope="module")
def cohort(paper):
    """One dict per patient: group, categorical values, age and hormones (before, after)."""
    patients = []
    for (group, subgroup), counts in SUBGROUPS.items():
        n = sum(counts["biopsy"].values())
        columns = {
            variable: [level for level, k in by_level.items() for _ in range(k)]
            for variable, by_level in counts.items()
        }
        table = TABLE_OF[subgroup]
        age = paper.cell(table, "age", group)
        columns["age"] = exactly(age.value("mean"), age.value("sd"), n)
        for hormone in ("fsh", "lh", "testosterone"):
            for when in ("before", "after"):
                cell = paper.cell(table, f"{hormone}_{when}", group)
                columns[f"{hormone}_{when}"] = exactly(cell.value("mean"), cell.value("sd"), n)
        for i in range(n):
            patients.append({"group": group} | {k: v[i] for k, v in columns.items()})
    return patients


def group_values(row: plan.RowSpec, members: list[dict]) -> GroupValues:
    kind, variable = row.variable.kind, row.variable
    if kind == plan.Kind.GROUP:
        return GroupValues(count=len(members))
    if kind in (plan.Kind.CATEGORICAL, plan.Kind.CONTINUOUS):
        return GroupValues(values=[p[variable.code] for p in members])
    return GroupValues(
        before=[p[f"{variable.hormone}_before"] for p in members],
        after=[p[f"{variable.hormone}_after"] for p in members],
    )


def compare(loaded: plan.Plan, paper, cohort) -> tuple[set, set]:
    """Every printed cell against the value computed under the plan: (equal, differs)."""
    equal, differs = set(), set()

    def check(cell, statistic, value):
        key = (cell.table, cell.row, cell.level, cell.group, statistic)
        (equal if agrees(cell, statistic, value) else differs).add(key)

    for table in loaded.tables:
        members = [
            p for p in cohort if table.subgroup is None or table.subgroup.includes(p["biopsy"])
        ]
        groups = {g: [p for p in members if p["group"] == g] for g in ("failed", "success")}
        for row in table.rows:
            result = compute_row(
                row,
                failed=group_values(row, groups["failed"]),
                success=group_values(row, groups["success"]),
            )
            cells = {(c.group, c.level): c for c in paper.cells_of(table.code, row.code)}
            if not cells:
                continue
            kind = row.variable.kind
            for group in ("failed", "success"):
                if kind == plan.Kind.GROUP:
                    summary = getattr(result, group)
                    check(cells[(group, None)], "n", summary.count)
                    check(cells[(group, None)], "percent", summary.percent)
                elif kind == plan.Kind.CATEGORICAL:
                    for lc in result.levels:
                        if (group, lc.level) in cells:
                            check(cells[(group, lc.level)], "n", getattr(lc, group).count)
                elif kind == plan.Kind.CONTINUOUS:
                    summary = getattr(result, group)
                    check(cells[(group, None)], "mean", summary.mean)
                    check(cells[(group, None)], "sd", summary.sd)
                elif kind == plan.Kind.PERCENT_CHANGE:
                    check(cells[(group, None)], "percent_change", getattr(result, group).value)
                elif kind == plan.Kind.PAIRED:
                    index = 0 if group == "failed" else 1
                    check(cells[(group, None)], "p", result.within[index].p)
            if ("p", None) in cells and result.test is not None:
                check(cells[("p", None)], "p", result.test.p)
    return equal, differs


@pytest.fixture(scope="module")
def as_published():
    return plan.load_file(PROTOCOL_DIR / "nct02025270.sap-as-published.json")


@pytest.fixture(scope="module")
def outcome(as_published, paper, cohort):
    return compare(as_published, paper, cohort)


def test_every_count_of_tables_1_to_3_is_reproduced(outcome):
    equal, differs = outcome
    counts_differ = {k for k in differs if k[4] == "n"}
    # the one printed count that is a typo: "1 (20.7%)" for 18 responders
    assert counts_differ == {("table1", "patients", None, "success", "n")}
    assert ("table1", "patients", None, "success", "percent") in equal
    assert len({k for k in equal if k[4] == "n"}) == 2 * (2 + 3 + 4 + 2 + 4) + 1 + 2 * (
        2 + 3 + 2 + 4
    )


def test_table_1s_five_categorical_p_values_are_reproduced(outcome):
    equal, _ = outcome
    for row in ("testicular_size", "examination", "biopsy", "karyotype", "azf"):
        assert ("table1", row, None, "p", "p") in equal


def test_table_2s_karyotype_and_azf_p_values_are_flagged(outcome):
    equal, differs = outcome
    assert ("table2", "karyotype", None, "p", "p") in differs
    assert ("table2", "azf", None, "p", "p") in differs
    assert ("table2", "testicular_size", None, "p", "p") in equal
    assert ("table2", "examination", None, "p", "p") in equal


def test_tables_2_and_3_hormone_means_and_sds_and_age_are_reproduced(outcome):
    equal, differs = outcome
    for table in ("table2", "table3"):
        for row in ("age", "fsh_before", "fsh_after", "lh_before", "lh_after",
                    "testosterone_before", "testosterone_after"):  # fmt: skip
            for group in ("failed", "success"):
                for statistic in ("mean", "sd"):
                    assert (table, row, None, group, statistic) in equal


def test_table_1s_non_responder_hormone_means_are_flagged(outcome):
    _, differs = outcome
    for hormone in ("fsh", "lh", "testosterone"):
        for when in ("before", "after"):
            assert ("table1", f"{hormone}_{when}", None, "failed", "mean") in differs


def test_the_percent_changes_of_tables_2_and_3_follow_from_the_group_means(outcome):
    equal, differs = outcome
    changes = {(k[0], k[1], k[3]) for k in differs if k[4] == "percent_change" and k[0] != "table1"}
    assert changes == {
        ("table2", "lh_percent_change", "failed"),
        ("table2", "lh_percent_change", "success"),
        ("table3", "lh_percent_change", "success"),
        ("table3", "testosterone_percent_change", "success"),
    }
    assert ("table2", "fsh_percent_change", None, "failed", "percent_change") in equal


def test_table_1_age_p_is_students_t_on_the_data(as_published, cohort):
    row = as_published.table("table1").row("age")
    failed = [p["age"] for p in cohort if p["group"] == "failed"]
    success = [p["age"] for p in cohort if p["group"] == "success"]
    result = compute_row(
        row, failed=GroupValues(values=failed), success=GroupValues(values=success)
    )
    assert result.test.test == "student_t"
    assert result.test.p == pytest.approx(stats.ttest_ind(failed, success).pvalue)


# ---- rows in detail --------------------------------------------------------------------------


def _row(table: str, code: str, which: str = "as-published") -> plan.RowSpec:
    return plan.load_file(PROTOCOL_DIR / f"nct02025270.sap-{which}.json").table(table).row(code)


def test_a_categorical_row_counts_the_declared_levels_and_the_others_apart():
    row = _row("table1", "karyotype")
    result = compute_row(
        row,
        failed=GroupValues(values=["46,XY", "47,XXY", None, "MOSAIC", "46,XY"]),
        success=GroupValues(values=["46,XY", "46,XY"]),
    )
    assert [(lc.level, lc.failed.count, lc.success.count) for lc in result.levels] == [
        ("46,XY", 2, 2),
        ("47,XXY", 1, 0),
    ]
    assert result.not_counted == (2, 0)
    assert result.levels[0].failed.label(1) == "2 (66.7%)"
    assert result.test.p == pytest.approx(
        stats.chi2_contingency([[2, 2], [1, 0]], correction=False).pvalue
    )


def test_labels_use_the_rows_decimals():
    row = _row("table1", "age")
    result = compute_row(
        row, failed=GroupValues(values=[30, 40, 35]), success=GroupValues(values=[33, 31])
    )
    assert result.summary_label("failed") == "35.00 ± 5.00"
    assert result.p_label() == f"{stats.ttest_ind([30, 40, 35], [33, 31]).pvalue:.3f}"


def test_a_within_row_tests_each_group():
    row = _row("table1", "fsh_within")
    before, after = [20.0, 25.0, 30.0, 22.0], [15.0, 21.0, 24.0, 20.5]
    result = compute_row(
        row,
        failed=GroupValues(before=before, after=after),
        success=GroupValues(before=before[:2], after=after[:2]),
    )
    assert result.within[0].p == pytest.approx(stats.ttest_rel(before, after).pvalue)
    assert result.within[1].test == "paired_t"


def test_a_recommended_percent_change_row_is_the_median_of_own_changes_with_mann_whitney():
    row = _row("table1", "testosterone_percent_change", "recommended")
    failed = GroupValues(before=[2.0, 3.0, 2.5, 4.0], after=[3.0, 3.3, 2.4, 5.0])
    success = GroupValues(before=[3.0, 3.5, 4.0], after=[5.0, 5.5, 4.4])
    result = compute_row(row, failed=failed, success=success)
    own_f = [(a - b) / b * 100 for b, a in zip(failed.before, failed.after, strict=True)]
    own_s = [(a - b) / b * 100 for b, a in zip(success.before, success.after, strict=True)]
    assert result.failed.median == pytest.approx(np.median(own_f))
    assert result.test.p == pytest.approx(methods.mann_whitney(own_f, own_s).p)


def test_a_zero_baseline_makes_the_percent_change_test_n_a_with_the_reason():
    row = _row("table1", "fsh_percent_change")  # change of group means, Student on own changes
    result = compute_row(
        row,
        failed=GroupValues(before=[0.0, 20.0, 30.0], after=[5.0, 10.0, 20.0]),
        success=GroupValues(before=[20.0, 25.0], after=[10.0, 12.0]),
    )
    assert result.failed.value == pytest.approx((50 / 3 - 35 / 3) / (50 / 3) * 100)
    assert result.test.p is None
    assert (
        result.test.reason
        == "A % change from a value of 0 is infinite (1 patient with a before value of 0)."
    )
    assert "inf" not in result.summary_label("failed") + result.p_label()
