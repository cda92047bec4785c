"""Each statistic of the results tables equals SciPy's on the same numbers, and the test the
rules pick is the one the page says it picks. No database."""

import math

import numpy as np
import pytest
from scipy import stats

from reports.statistics import (
    ALPHA_NORMALITY,
    MIN_EXPECTED_COUNT,
    MONTE_CARLO_RESAMPLES,
    MONTE_CARLO_SEED,
    RULES,
    Method,
    PValue,
    compare_counts,
    compare_groups,
    compare_paired,
    cumulative_incidence,
    describe,
)

# Quantiles of a normal distribution: as normal as a sample gets (Shapiro-Wilk p ~ 1).
NORMAL_A = list(stats.norm.ppf(np.linspace(0.05, 0.95, 12), loc=25, scale=8))
NORMAL_B = list(stats.norm.ppf(np.linspace(0.05, 0.95, 15), loc=19, scale=6))
# Strongly right-skewed: Shapiro-Wilk rejects normality.
SKEWED = [1.0, 1.1, 1.2, 1.3, 1.5, 1.6, 2.0, 2.2, 3.0, 9.0, 30.0, 80.0]

pytestmark = pytest.mark.filterwarnings("error")  # no SciPy warning may leak out


def test_the_chosen_arrays_are_what_the_cases_need():
    assert stats.shapiro(NORMAL_A).pvalue >= ALPHA_NORMALITY
    assert stats.shapiro(NORMAL_B).pvalue >= ALPHA_NORMALITY
    assert stats.shapiro(SKEWED).pvalue < ALPHA_NORMALITY


# ---- mean and SD -----------------------------------------------------------------------------


def test_mean_and_sd_are_numpys_with_the_sample_sd():
    values = [3.1, 2.4, 5.0, None, 4.2]
    summary = describe(values=values)
    data = np.array([3.1, 2.4, 5.0, 4.2])
    assert summary.n == 4
    assert summary.mean == pytest.approx(np.mean(data))
    assert summary.sd == pytest.approx(np.std(data, ddof=1))
    assert summary.sd == pytest.approx(stats.tstd(data))
    assert summary.label == f"{np.mean(data):.1f} ± {np.std(data, ddof=1):.1f}"


def test_one_value_has_no_sd_and_no_value_is_n_a():
    assert describe(values=[7.0]).label == "7.0 ± n/a"
    empty = describe(values=[None, float("nan")])
    assert (empty.n, empty.mean, empty.label) == (0, None, "n/a")


# ---- counts: Fisher or chi-square by expected counts -----------------------------------------


def test_a_2x2_table_with_an_expected_count_below_5_uses_fishers_exact():
    table = [[3, 12], [9, 14]]  # small first column
    assert stats.contingency.expected_freq(table).min() < MIN_EXPECTED_COUNT
    result = compare_counts(table=table)
    assert result.test == Method.FISHER
    assert result.p == pytest.approx(stats.fisher_exact(table).pvalue)
    assert result.n == 38


def test_a_2x2_table_with_all_expected_counts_5_or_more_uses_chi_square():
    table = [[12, 30], [9, 40]]
    assert stats.contingency.expected_freq(table).min() >= MIN_EXPECTED_COUNT
    result = compare_counts(table=table)
    assert result.test == Method.CHI_SQUARE
    assert result.p == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)


def test_a_larger_table_with_small_expected_counts_uses_fisher_freeman_halton():
    table = [[8, 46], [3, 8], [2, 2], [3, 4], [2, 9]]
    result = compare_counts(table=table)
    assert result.test == Method.FISHER_RXC
    method = stats.MonteCarloMethod(
        n_resamples=MONTE_CARLO_RESAMPLES, rng=np.random.default_rng(MONTE_CARLO_SEED)
    )
    assert result.p == pytest.approx(stats.fisher_exact(np.array(table), method=method).pvalue)
    # A fixed seed: the page shows the same p-value every time.
    assert compare_counts(table=table).p == result.p


def test_a_tiny_larger_table_gets_a_number_too():
    # SciPy returns this one's p-value as a 1-element array.
    result = compare_counts(table=[[1, 0], [0, 1], [1, 1]])
    assert (result.test, result.n) == (Method.FISHER_RXC, 4)
    assert 0 < result.p <= 1


def test_a_larger_table_with_large_expected_counts_uses_chi_square():
    table = [[20, 25], [15, 30], [18, 22]]
    result = compare_counts(table=table)
    assert result.test == Method.CHI_SQUARE
    assert result.p == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)


def test_categories_nobody_has_are_left_out_of_the_test():
    with_empty = compare_counts(table=[[3, 12], [0, 0], [9, 14], [0, 0]])
    assert with_empty == compare_counts(table=[[3, 12], [9, 14]])


@pytest.mark.parametrize(
    "table, reason",
    [
        ([[0, 5], [0, 7]], "Both groups"),  # no responder
        ([[4, 5], [0, 0]], "one category"),  # everybody in one category
        ([[0, 0], [0, 0]], "Both groups"),  # nobody
        ([], "Both groups"),
    ],
)
def test_a_table_that_cannot_be_tested_is_n_a_with_the_reason(table, reason):
    result = compare_counts(table=table)
    assert (result.p, result.p_label, result.label) == (None, "n/a", "n/a")
    assert reason in result.note


# ---- two groups: Welch or Mann-Whitney -------------------------------------------------------


def test_two_normal_groups_use_welchs_t_test():
    result = compare_groups(first=NORMAL_A, second=NORMAL_B)
    assert result.test == Method.WELCH
    assert result.p == pytest.approx(stats.ttest_ind(NORMAL_A, NORMAL_B, equal_var=False).pvalue)
    assert result.n == len(NORMAL_A) + len(NORMAL_B)


def test_a_skewed_group_uses_mann_whitney():
    result = compare_groups(first=SKEWED, second=NORMAL_B)
    assert result.test == Method.MANN_WHITNEY
    expected = stats.mannwhitneyu(SKEWED, NORMAL_B, alternative="two-sided").pvalue
    assert result.p == pytest.approx(expected)


def test_fewer_than_3_patients_in_a_group_uses_mann_whitney():
    result = compare_groups(first=[20.0, 31.0], second=NORMAL_B)
    assert result.test == Method.MANN_WHITNEY
    expected = stats.mannwhitneyu([20.0, 31.0], NORMAL_B, alternative="two-sided").pvalue
    assert result.p == pytest.approx(expected)


def test_missing_values_are_left_out_before_testing():
    result = compare_groups(first=[*NORMAL_A, None], second=[None, *NORMAL_B])
    assert result == compare_groups(first=NORMAL_A, second=NORMAL_B)


def test_an_empty_group_is_n_a():
    result = compare_groups(first=[], second=NORMAL_B)
    assert result.label == "n/a"
    assert result.n == len(NORMAL_B)
    assert "no patient" in result.note


def test_identical_values_are_not_normal_and_go_to_mann_whitney():
    same, other = [5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0]
    result = compare_groups(first=same, second=other)
    assert result.test == Method.MANN_WHITNEY
    assert result.p == stats.mannwhitneyu(same, other, alternative="two-sided").pvalue


# ---- before vs after: paired t or Wilcoxon ---------------------------------------------------


def test_normal_differences_use_the_paired_t_test():
    before = [float(v) for v in range(20, 32)]
    after = [b - d for b, d in zip(before, NORMAL_A, strict=True)]
    differences = np.subtract(after, before)
    assert stats.shapiro(differences).pvalue >= ALPHA_NORMALITY
    result = compare_paired(before=before, after=after)
    assert result.test == Method.PAIRED_T
    assert result.p == pytest.approx(stats.ttest_rel(before, after).pvalue)
    assert result.n == 12


def test_skewed_differences_use_wilcoxon_signed_rank():
    before = [30.0] * len(SKEWED)
    after = [30.0 - d for d in SKEWED]
    result = compare_paired(before=before, after=after)
    assert result.test == Method.WILCOXON
    assert result.p == pytest.approx(stats.wilcoxon(before, after).pvalue)


def test_only_patients_with_both_values_are_paired():
    before = [20.0, 25.0, None, 30.0, 22.0]
    after = [18.0, None, 11.0, 24.0, 21.0]
    result = compare_paired(before=before, after=after)
    assert result.n == 3
    assert result.test == Method.PAIRED_T
    assert result.p == pytest.approx(stats.ttest_rel([20, 30, 22], [18, 24, 21]).pvalue)


def test_no_pair_is_n_a():
    result = compare_paired(before=[20.0, None], after=[None, 3.0])
    assert (result.label, result.n) == ("n/a", 0)
    assert "both a baseline and a follow-up" in result.note


def test_no_change_at_all_is_n_a_because_scipy_warns():
    before = after = [3.0, 4.0, 5.0]
    with pytest.warns(RuntimeWarning):
        stats.wilcoxon(before, after)
    unchanged = compare_paired(before=before, after=after)
    assert (unchanged.label, unchanged.n) == ("n/a", 3)
    assert "not reliable" in unchanged.note


# ---- how p-values read -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "p, label",
    [(0.0004, "<0.001"), (0.0321, "0.032"), (0.05, "0.050"), (1.0, "1.000"), (None, "n/a")],
)
def test_p_values_read_as_in_the_paper(p, label):
    assert PValue(Method.WELCH, p, 10).p_label == label


def test_the_stated_rules_name_the_thresholds_the_code_uses():
    text = " ".join(rule for _, rule in RULES)
    assert f"below {MIN_EXPECTED_COUNT}" in text
    assert f"p >= {ALPHA_NORMALITY}" in text
    for name in ("Fisher's exact", "chi-square", "Welch", "Mann-Whitney", "Paired t-test"):
        assert name in text
    assert "Wilcoxon signed-rank" in text


# ---- time to first sperm ---------------------------------------------------------------------


def test_the_cumulative_proportion_is_kaplan_meier():
    # 9 patients: sperm first seen at days 120, 180, 180, 240; censored at 120, 300, 360 x 3.
    steps = cumulative_incidence(
        event_days=[120, 180, 180, 240], censored_days=[360, 360, 300, 120, 360]
    )
    by_day = {s.day: s for s in steps}
    # By hand: S(120) = 8/9; 7 at risk at 180, 2 events: S = 8/9 x 5/7; 5 at risk at 240.
    assert by_day[0].proportion == 0
    assert by_day[120].proportion == pytest.approx(1 - 8 / 9)
    assert by_day[180].proportion == pytest.approx(1 - 8 / 9 * 5 / 7)
    assert by_day[240].proportion == pytest.approx(1 - 8 / 9 * 5 / 7 * 4 / 5)
    assert by_day[360].proportion == by_day[240].proportion  # only censoring after 240
    assert (by_day[120].at_risk, by_day[180].at_risk, by_day[240].at_risk) == (9, 7, 5)


def test_without_any_sperm_the_curve_stays_at_zero_and_without_patients_it_is_empty():
    steps = cumulative_incidence(event_days=[], censored_days=[120, 360])
    assert [s.proportion for s in steps] == [0, 0]
    assert steps[-1].day == 360
    assert cumulative_incidence(event_days=[], censored_days=[]) == []
    assert not math.isnan(cumulative_incidence(event_days=[5], censored_days=[])[1].proportion)
