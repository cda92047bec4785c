"""reports.methods: each named test and summary equals SciPy / NumPy on the same arrays, the
rules it documents (exact Mann-Whitney and Wilcoxon, exact Fisher-Freeman-Halton for R x 2)
hold, % change has both definitions, and nothing returns NaN or infinity: n/a with a reason.
No database."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from reports import methods, statistics
from reports.methods import Reason

pytestmark = pytest.mark.filterwarnings("error")  # no SciPy / NumPy warning may leak out

# Unequal sizes and spreads: Student and Welch differ.
WIDE = [12.0, 30.5, 18.2, 44.0, 9.9, 27.3, 35.1, 20.0]
NARROW = [21.0, 22.5, 23.1, 21.7, 22.9, 23.4, 22.2, 21.9, 22.8, 23.0, 22.1, 21.5, 22.6]
BEFORE = [24.1, 30.2, 18.7, 22.0, 27.5, 19.9, 33.0, 25.4, 21.2, 28.8]
AFTER = [20.0, 22.4, 17.1, 15.2, 25.0, 12.3, 30.8, 19.4, 19.7, 20.1]


# ---- summaries -------------------------------------------------------------------------------


def test_mean_sd_is_numpys_with_the_sample_sd_and_rounds_only_in_the_label():
    values = [36.9, 41.2, None, 29.5, float("nan"), 33.0]
    data = np.array([36.9, 41.2, 29.5, 33.0])
    s = methods.mean_sd(values)
    assert s.n == 4
    assert s.mean == pytest.approx(np.mean(data))
    assert s.sd == pytest.approx(np.std(data, ddof=1))
    assert s.label(2) == f"{np.mean(data):.2f} ± {np.std(data, ddof=1):.2f}"
    assert s.label(0) == f"{np.mean(data):.0f} ± {np.std(data, ddof=1):.0f}"
    # a small SD is not hidden by the decimals the plan asks for
    assert (
        methods.mean_sd([3.44, 3.51, 3.2, 3.9])
        .label(3)
        .endswith(f"{np.std([3.44, 3.51, 3.2, 3.9], ddof=1):.3f}")
    )


def test_median_iqr_is_numpys_type_7_percentiles():
    values = [1.2, 9.5, 3.3, 4.8, 2.0, 15.1, 6.6]
    s = methods.median_iqr(values)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    assert (s.n, s.median, s.q1, s.q3) == (7, pytest.approx(median), q1, q3)
    assert s.median == pytest.approx(np.median(values))
    assert s.label(1) == f"{median:.1f} [{q1:.1f}–{q3:.1f}]"


def test_n_percent():
    assert methods.n_percent(69, 87).label(1) == "69 (79.3%)"
    assert methods.n_percent(18, 87).label(2) == "18 (20.69%)"
    assert methods.n_percent(0, 0).percent is None
    assert methods.n_percent(0, 0).label() == "0"
    assert methods.n_percent(5, 3).reason == Reason.BAD_TABLE


@pytest.mark.parametrize(
    ("summary", "values", "reason"),
    [
        (methods.mean_sd, [], Reason.NO_VALUE),
        (methods.mean_sd, [None, float("nan")], Reason.NO_VALUE),
        (methods.mean_sd, [1.0, float("inf")], Reason.INFINITE),
        (methods.mean_sd, [1e308, 1e308], Reason.TOO_LARGE),
        (methods.median_iqr, [], Reason.NO_VALUE),
        (methods.median_iqr, [2.0, float("-inf")], Reason.INFINITE),
    ],
)
def test_a_summary_that_cannot_be_given_is_n_a_with_the_reason(summary, values, reason):
    s = summary(values)
    assert s.reason == reason
    assert s.label(2) == "n/a"


def test_one_value_has_a_mean_and_no_sd():
    s = methods.mean_sd([7.0])
    assert (s.mean, s.sd, s.label(1)) == (7.0, None, "7.0 ± n/a")


def test_p_labels():
    assert methods.p_label(0.0699) == "0.070"
    assert methods.p_label(0.0004) == "< 0.001"
    assert methods.p_label(0.0004, 4) == "0.0004"
    assert methods.p_label(None) == "n/a"


# ---- counts ----------------------------------------------------------------------------------

# Table 1's counts (failed, success), as printed.
TABLE1 = {
    "testicular_size": ([[35, 12], [34, 6]], "0.227"),
    "examination": ([[61, 17], [7, 0], [1, 1]], "0.231"),
    "biopsy": ([[9, 2], [3, 4], [2, 1], [55, 11]], "0.084"),
    "karyotype": ([[58, 18], [11, 0]], "0.070"),
    "azf": ([[65, 18], [1, 0], [2, 0], [1, 0]], "0.779"),
}


@pytest.mark.parametrize("row", TABLE1)
def test_chi_square_is_pearsons_without_correction_and_gives_table_1s_p_values(row):
    table, printed = TABLE1[row]
    result = methods.chi_square(table)
    expected = stats.chi2_contingency(table, correction=False)
    assert result.p == pytest.approx(expected.pvalue)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.n == 87
    assert result.label(3) == printed


def test_chi_square_leaves_out_categories_nobody_is_in():
    table = [[52, 11], [0, 0], [2, 0], [1, 0]]  # Table 2 AZF: nobody has AZFa
    assert methods.chi_square(table).p == pytest.approx(
        stats.chi2_contingency([[52, 11], [2, 0], [1, 0]], correction=False).pvalue
    )
    assert methods.chi_square(table).label(2) == "0.73"


def test_yates_applies_to_a_2x2_table_only():
    table = [[44, 11], [11, 0]]
    assert methods.chi_square_yates(table).p == pytest.approx(
        stats.chi2_contingency(table, correction=True).pvalue
    )
    assert methods.chi_square_yates(table).p != pytest.approx(methods.chi_square(table).p)
    r = methods.chi_square_yates([[61, 17], [7, 0], [1, 1]])
    assert (r.p, r.reason) == (None, Reason.NOT_2X2)


def test_fisher_is_scipys_2x2_exact_test():
    table = [[44, 11], [11, 0]]
    assert methods.fisher(table).p == pytest.approx(stats.fisher_exact(table).pvalue)
    assert methods.fisher(table).label(3) == "0.188"
    r = methods.fisher([[61, 17], [7, 0], [1, 1]])
    assert (r.p, r.reason) == (None, Reason.NOT_2X2)


def _ffh_by_enumeration(table) -> float:
    """An independent Fisher-Freeman-Halton p: every R x C table with the same margins,
    its probability from SciPy's random_table (multivariate hypergeometric)."""
    t = np.asarray(table)
    rows, cols = t.sum(axis=1), t.sum(axis=0)
    dist = stats.random_table(rows, cols)
    observed = dist.pmf(t)
    total = 0.0
    first_col = [range(0, r + 1) for r in rows]
    for column in itertools.product(*first_col):
        if sum(column) != cols[0]:
            continue
        candidate = np.array([[c, r - c] for c, r in zip(column, rows, strict=True)])
        p = dist.pmf(candidate)
        if p <= observed * (1 + 1e-7):
            total += p
    return total


@pytest.mark.parametrize(
    "table",
    [
        [[61, 17], [7, 0], [1, 1]],
        [[9, 2], [3, 4], [2, 1], [55, 11]],
        [[3, 0], [1, 4], [2, 2]],
        [[5, 1], [0, 3]],
    ],
)
def test_fisher_freeman_halton_is_exact_for_two_groups(table):
    result = methods.fisher_freeman_halton(table)
    assert result.p == pytest.approx(_ffh_by_enumeration(table), rel=1e-9)
    assert result.detail.startswith("exact")


def test_fisher_freeman_halton_of_a_2x2_table_is_fishers_exact_test():
    table = [[44, 11], [11, 0]]
    assert methods.fisher_freeman_halton(table).p == pytest.approx(stats.fisher_exact(table).pvalue)


def test_fisher_freeman_halton_of_a_larger_table_is_scipys_seeded_monte_carlo():
    table = [[3, 1, 2], [0, 4, 1], [2, 0, 3]]
    result = methods.fisher_freeman_halton(table)
    expected = stats.fisher_exact(table, method=statistics.monte_carlo()).pvalue
    assert result.p == pytest.approx(float(np.ravel(expected)[0]))
    assert "Monte Carlo" in result.detail


@pytest.mark.parametrize(
    ("test", "table", "reason"),
    [
        (methods.chi_square, [[5, 0], [7, 0]], Reason.ONE_GROUP),
        (methods.chi_square, [[5, 3], [0, 0]], Reason.ONE_CATEGORY),
        (methods.fisher, [[5, 3]], Reason.ONE_CATEGORY),
        (methods.fisher_freeman_halton, [[0, 0], [0, 0]], Reason.NO_VALUE),
        (methods.chi_square, [[5, -1], [2, 3]], Reason.BAD_TABLE),
        (methods.chi_square, [[5, 1.5], [2, 3]], Reason.BAD_TABLE),
        (methods.chi_square, [], Reason.BAD_TABLE),
        (methods.chi_square, [[1, 2], [3]], Reason.BAD_TABLE),
    ],
)
def test_a_table_that_cannot_be_tested_is_n_a_with_the_reason(test, table, reason):
    result = test(table)
    assert (result.p, result.reason) == (None, reason)


def test_auto_counts_is_the_results_pages_rule():
    for table in ([[3, 12], [9, 14]], [[12, 30], [9, 40]]):
        assert methods.auto_counts(table).p == pytest.approx(
            statistics.compare_counts(table=table).p
        )
    assert methods.auto_counts([[3, 12], [9, 14]]).name == "Fisher's exact"
    assert methods.auto_counts([[12, 30], [9, 40]]).name == "Pearson chi-square"


# ---- two groups ------------------------------------------------------------------------------


def test_student_and_welch_are_scipys_and_differ_when_the_variances_differ():
    student = methods.student_t(WIDE, NARROW)
    welch = methods.welch_t(WIDE, NARROW)
    assert student.p == pytest.approx(stats.ttest_ind(WIDE, NARROW, equal_var=True).pvalue)
    assert welch.p == pytest.approx(stats.ttest_ind(WIDE, NARROW, equal_var=False).pvalue)
    assert student.statistic == pytest.approx(stats.ttest_ind(WIDE, NARROW).statistic)
    assert abs(student.p - welch.p) > 0.01
    assert student.n == len(WIDE) + len(NARROW)


def test_student_t_from_table_1s_age_summary_is_0_272():
    # The note of PUBLISHED-TABLES.md: Student's t from the printed means and SDs.
    assert f"{stats.ttest_ind_from_stats(36.9, 7.35, 69, 34.83, 5.85, 18).pvalue:.3f}" == "0.272"


def test_mann_whitney_is_exact_for_small_samples_without_ties():
    a, b = [1.1, 2.3, 3.2, 4.9, 5.4, 8.8], [6.1, 7.7, 9.2, 10.3, 12.0, 2.9, 11.4]
    result = methods.mann_whitney(a, b)
    exact = stats.mannwhitneyu(a, b, alternative="two-sided", method="exact")
    approximate = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    assert result.p == pytest.approx(exact.pvalue)
    assert result.p != pytest.approx(approximate.pvalue)
    assert result.statistic == exact.statistic
    assert result.detail == "exact"


def test_mann_whitney_with_ties_or_large_groups_uses_the_corrected_normal_approximation():
    a, b = [1.0, 2.0, 2.0, 3.0, 5.0], [2.0, 4.0, 6.0, 6.0, 7.0]
    assert not methods.mann_whitney_is_exact(a, b)
    assert methods.mann_whitney(a, b).p == pytest.approx(
        stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue
    )
    big_a = [float(i) for i in range(methods.MW_EXACT_MAX_N + 1)]
    big_b = [i + 0.5 for i in range(20)]
    assert not methods.mann_whitney_is_exact(big_a, big_b)
    result = methods.mann_whitney(big_a, big_b)
    assert result.detail.startswith("normal approximation")
    assert result.p == pytest.approx(
        stats.mannwhitneyu(big_a, big_b, alternative="two-sided", method="asymptotic").pvalue
    )


@pytest.mark.parametrize(
    ("test", "first", "second", "reason"),
    [
        (methods.student_t, [], [1.0, 2.0], Reason.EMPTY_GROUP),
        (methods.welch_t, [1.0, 2.0], [None], Reason.EMPTY_GROUP),
        (methods.mann_whitney, [3.0, 3.0, 3.0], [3.0, 3.0], Reason.NO_VARIATION),
        (methods.student_t, [3.0, 3.0], [3.0, 3.0], Reason.NO_VARIATION),
        (methods.student_t, [1.0, 1.0], [2.0, 2.0], Reason.NO_VARIATION_WITHIN),
        (methods.welch_t, [1.0, 1.0], [2.0, 3.0], Reason.NO_VARIATION_WITHIN),
        (methods.welch_t, [1.0], [2.0, 3.0], Reason.TOO_FEW),
        (methods.student_t, [1.0], [2.0], Reason.TOO_FEW),
        (methods.student_t, [1.0, float("inf")], [2.0, 3.0], Reason.INFINITE),
        (methods.mann_whitney, [1.0, 2.0], [float("-inf")], Reason.INFINITE),
    ],
)
def test_two_groups_that_cannot_be_compared_are_n_a_with_the_reason(test, first, second, reason):
    result = test(first, second)
    assert (result.p, result.reason) == (None, reason)
    assert result.label(3) == "n/a"


def test_mann_whitney_on_identical_values_is_n_a_not_1():
    # issue 13: "no variation gives p = 1.000 instead of n/a"
    assert methods.mann_whitney([5.0] * 6, [5.0] * 4).p is None


def test_auto_two_groups_chooses_as_the_results_page_does():
    normal_a = list(stats.norm.ppf(np.linspace(0.05, 0.95, 12), loc=25, scale=8))
    normal_b = list(stats.norm.ppf(np.linspace(0.05, 0.95, 15), loc=19, scale=6))
    skewed = [1.0, 1.1, 1.2, 1.3, 1.5, 1.6, 2.0, 2.2, 3.0, 9.0, 30.0, 80.0]
    welch = methods.auto_two_groups(normal_a, normal_b)
    assert statistics.compare_groups(first=normal_a, second=normal_b).test == (
        statistics.Method.WELCH
    )
    assert welch.name == methods.NAMES["welch_t"]
    assert welch.p == pytest.approx(methods.welch_t(normal_a, normal_b).p)
    chosen = methods.auto_two_groups(normal_a, skewed)
    assert statistics.compare_groups(first=normal_a, second=skewed).test == (
        statistics.Method.MANN_WHITNEY
    )
    assert chosen.name == methods.NAMES["mann_whitney"]
    # the chosen test is computed here: Mann-Whitney with its exact p (no ties, small groups)
    assert chosen.p == pytest.approx(methods.mann_whitney(normal_a, skewed).p)
    assert "exact" in chosen.detail


# ---- within a group --------------------------------------------------------------------------


def test_paired_t_is_scipys_on_the_complete_pairs():
    before = [*BEFORE, None, 20.0]
    after = [*AFTER, 18.0, float("nan")]
    result = methods.paired_t(before, after)
    assert result.p == pytest.approx(stats.ttest_rel(BEFORE, AFTER).pvalue)
    assert result.n == len(BEFORE)


def test_wilcoxon_is_exact_without_ties_or_zeros():
    differences = [b - a for a, b in zip(BEFORE, AFTER, strict=True)]
    assert methods.wilcoxon_is_exact(differences)
    result = methods.wilcoxon(BEFORE, AFTER)
    assert result.p == pytest.approx(stats.wilcoxon(BEFORE, AFTER, method="exact").pvalue)
    assert result.detail == "exact"


def test_wilcoxon_with_ties_or_zeros_uses_the_normal_approximation():
    before, after = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 3.0, 3.0, 6.0, 7.0, 4.0]
    result = methods.wilcoxon(before, after)
    assert result.p == pytest.approx(
        stats.wilcoxon(before, after, zero_method="wilcox", method="asymptotic").pvalue
    )
    assert result.detail == "normal approximation"


@pytest.mark.parametrize(
    ("test", "before", "after", "reason"),
    [
        (methods.paired_t, [1.0, None], [None, 2.0], Reason.NO_PAIR),
        (methods.wilcoxon, [], [], Reason.NO_PAIR),
        (methods.paired_t, [1.0, 2.0, 3.0], [2.0, 3.0, 4.0], "every patient changed by"),
        (methods.wilcoxon, [1.0, 2.0], [1.0, 2.0], "every patient changed by"),
        (methods.paired_t, [1.0, float("inf")], [1.0, 2.0], Reason.INFINITE),
    ],
)
def test_pairs_that_cannot_be_tested_are_n_a_with_the_reason(test, before, after, reason):
    result = test(before, after)
    assert result.p is None
    assert reason in result.reason


def test_auto_paired_is_the_results_pages_rule():
    assert methods.auto_paired(BEFORE, AFTER).p == pytest.approx(
        statistics.compare_paired(before=BEFORE, after=AFTER).p
    )


# ---- % change --------------------------------------------------------------------------------


def test_change_of_group_means_reproduces_table_1():
    # Table 1, non-responders: FSH 24.70 -> 19.68 printed 20.32; testosterone 2.367 -> 3.52
    # printed 32.76 (divided by the after mean).
    fsh = methods.percent_change(
        [20.0, 29.4], [17.0, 22.36], definition="change_of_group_means",
        denominator="before", direction="fall",
    )  # fmt: skip
    assert fsh.value == pytest.approx((24.70 - 19.68) / 24.70 * 100)
    assert fsh.label(2) == "20.32"
    testosterone = methods.percent_change(
        [2.0, 2.734], [3.0, 4.04], definition="change_of_group_means",
        denominator="after", direction="rise",
    )  # fmt: skip
    assert testosterone.label(2) == "32.76"
    assert testosterone.individual == pytest.approx(
        ((3 - 2) / 3 * 100, (4.04 - 2.734) / 4.04 * 100)
    )


def test_mean_of_individual_changes_averages_each_patients_own_change():
    result = methods.percent_change(
        BEFORE, AFTER, definition="mean_of_individual_changes", denominator="before",
        direction="fall",
    )  # fmt: skip
    own = [(b - a) / b * 100 for b, a in zip(BEFORE, AFTER, strict=True)]
    assert result.individual == pytest.approx(own)
    assert result.value == pytest.approx(np.mean(own))
    group = methods.percent_change(
        BEFORE, AFTER, definition="change_of_group_means", denominator="before",
        direction="fall",
    )  # fmt: skip
    assert group.value == pytest.approx((np.mean(BEFORE) - np.mean(AFTER)) / np.mean(BEFORE) * 100)
    assert group.value != pytest.approx(result.value)


def test_the_direction_sets_the_sign_and_only_complete_pairs_count():
    rise = methods.percent_change(
        [2.0, None, 4.0], [3.0, 5.0, None], definition="mean_of_individual_changes",
        denominator="before", direction="rise",
    )  # fmt: skip
    assert (rise.n, rise.value) == (1, pytest.approx(50.0))
    fall = methods.percent_change(
        [2.0], [3.0], definition="mean_of_individual_changes", denominator="before",
        direction="fall",
    )  # fmt: skip
    assert fall.value == pytest.approx(-50.0)


def test_a_zero_baseline_is_n_a_with_the_reason_under_both_definitions():
    individual = methods.percent_change(
        [0.0, 20.0], [5.0, 10.0], definition="mean_of_individual_changes",
        denominator="before", direction="fall",
    )  # fmt: skip
    assert individual.value is None
    assert individual.reason == f"{Reason.ZERO_DENOMINATOR} (1 patient with a before value of 0)."
    assert individual.label(1) == "n/a"
    # the group means are not zero: the change of group means is defined
    group = methods.percent_change(
        [0.0, 20.0], [5.0, 10.0], definition="change_of_group_means", denominator="before",
        direction="fall",
    )  # fmt: skip
    assert group.value == pytest.approx((10 - 7.5) / 10 * 100)
    assert group.individual == ()  # one patient's own change is infinite
    zero_mean = methods.percent_change(
        [0.0, 0.0], [5.0, 10.0], definition="change_of_group_means", denominator="before",
        direction="fall",
    )  # fmt: skip
    assert zero_mean.value is None
    assert zero_mean.reason.startswith(Reason.ZERO_DENOMINATOR)
    after_zero = methods.percent_change(
        [3.0], [0.0], definition="change_of_group_means", denominator="after", direction="rise"
    )
    assert after_zero.value is None


def test_an_unknown_definition_is_refused():
    with pytest.raises(ValueError, match="definition"):
        methods.percent_change([1], [2], definition="x", denominator="before", direction="rise")
    with pytest.raises(ValueError, match="denominator"):
        methods.percent_change(
            [1], [2], definition="change_of_group_means", denominator="x", direction="rise"
        )


# ---- never NaN, never infinity ---------------------------------------------------------------

ANY_FLOAT = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([0.0, 1.0, 1.0, 2.5]),
)
SAMPLES = st.lists(ANY_FLOAT, max_size=12)
TABLES = st.integers(1, 4).flatmap(
    lambda rows: st.lists(
        st.lists(st.integers(0, 30), min_size=2, max_size=2), min_size=rows, max_size=rows
    )
)


def _numbers(result) -> list:
    return [v for v in vars(result).values() if isinstance(v, float)] + [
        x for v in vars(result).values() if isinstance(v, tuple) for x in v
    ]


def _assert_clean(result):
    for value in _numbers(result):
        assert math.isfinite(value), result
    p = getattr(result, "p", None)
    if p is not None:
        assert 0.0 <= p <= 1.0
    for decimals in (0, 3):
        text = result.label(decimals).lower()
        assert "nan" not in text and "inf" not in text, text
    if "p" in vars(result) and result.p is None or getattr(result, "value", 0) is None:
        assert result.reason


@settings(max_examples=150)
@given(first=SAMPLES, second=SAMPLES)
def test_no_two_group_test_or_summary_returns_nan_or_infinity(first, second):
    for info in methods.TESTS.values():
        if info.shape == "two_groups":
            _assert_clean(info.function(first, second))
    _assert_clean(methods.mean_sd(first))
    _assert_clean(methods.median_iqr(first))


@settings(max_examples=150)
@given(pairs=st.lists(st.tuples(ANY_FLOAT, ANY_FLOAT), max_size=12))
def test_no_paired_test_or_percent_change_returns_nan_or_infinity(pairs):
    before = [a for a, _ in pairs]
    after = [b for _, b in pairs]
    for info in methods.TESTS.values():
        if info.shape == "paired":
            _assert_clean(info.function(before, after))
    for definition, denominator, direction in itertools.product(
        methods.Definition.ALL, methods.DENOMINATORS, methods.DIRECTIONS
    ):
        _assert_clean(
            methods.percent_change(
                before,
                after,
                definition=definition,
                denominator=denominator,
                direction=direction,
            )  # fmt: skip
        )


@settings(max_examples=150)
@given(table=TABLES)
def test_no_count_test_returns_nan_or_infinity(table):
    for info in methods.TESTS.values():
        if info.shape == "counts":
            _assert_clean(info.function(table))


def test_the_number_of_tables_with_given_margins_is_counted_exactly():
    for rows, first in (([3, 1, 2], 3), ([5, 0, 4, 2], 6), ([2], 1), ([4, 4], 9)):
        brute = sum(
            1 for column in itertools.product(*(range(r + 1) for r in rows)) if sum(column) == first
        )
        assert methods._tables_with_margins(rows, first, cap=10**9) == brute
        # capped: exact up to the cap, cap + 1 beyond it
        assert methods._tables_with_margins(rows, first, cap=5) == min(brute, 6)


def test_fisher_freeman_halton_at_10000_patients_is_a_seeded_monte_carlo_estimate():
    # Too many tables to enumerate (counted first): random tables with the margins.
    table = [[1000, 200], [300, 400], [200, 100], [6300, 1500]]
    assert methods.exact_rx2_p(np.asarray(table)) is None
    result = methods.fisher_freeman_halton(table)
    assert "Monte Carlo" in result.detail
    assert result.p == methods.monte_carlo_rx2_p(np.asarray(table)) == 1 / 10_000


def _se(p: float) -> float:
    return math.sqrt(p * (1 - p) / methods.MONTE_CARLO_RESAMPLES)


def test_the_monte_carlo_estimate_agrees_with_the_exact_p_and_scipys_estimate():
    # where the exact p is known (Table 1 biopsy): within 3 standard errors
    small = np.asarray([[9, 2], [3, 4], [2, 1], [55, 11]])
    exact = methods.exact_rx2_p(small)
    assert abs(methods.monte_carlo_rx2_p(small) - exact) < 3 * _se(exact)
    # a large table near independence: SciPy's own Monte Carlo estimate of the same p
    large = [[150, 150], [160, 140], [140, 160], [150, 150]]
    scipy_p = float(np.ravel(stats.fisher_exact(large, method=statistics.monte_carlo()).pvalue)[0])
    ours = methods.fisher_freeman_halton(large).p
    assert abs(ours - scipy_p) < 4 * _se(scipy_p)
    # reproducible: the same seed, the same p
    assert methods.fisher_freeman_halton(large).p == ours


def test_scipys_warning_on_almost_identical_values_becomes_a_reason_not_its_text():
    result = methods.student_t([1.0, 1.0 + 1e-15, 1.0], [1.0, 1.0, 1.0 + 2e-15])
    assert (result.p, result.reason) == (None, Reason.ALMOST_NO_VARIATION)
    assert "precision" not in result.reason.lower()
