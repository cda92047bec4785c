"""The statistics of the results tables, on plain numbers (no database), and the rules that
choose each test. SciPy computes every test. A group without data, or a p-value SciPy cannot
give cleanly (NaN, or a warning from the test itself), is reported as n/a with the reason,
never as an error.

The rules below are shown on the results page and in the PDF (RULES): the page says what the
code does because both read these constants.
"""

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Shapiro-Wilk: normality is "not rejected" when p >= ALPHA_NORMALITY.
ALPHA_NORMALITY = 0.05
# The smallest group (or number of pairs) Shapiro-Wilk is run on.
MIN_N_NORMALITY = 3
# Fisher's exact test instead of chi-square when any expected count is below this.
MIN_EXPECTED_COUNT = 5
# Fisher-Freeman-Halton (tables larger than 2 x 2): SciPy estimates its p-value from random
# tables with the observed margins; a fixed seed makes the page reproducible.
MONTE_CARLO_RESAMPLES = 9999
MONTE_CARLO_SEED = 20250270


class Method:
    CHI_SQUARE = "Pearson chi-square"
    FISHER = "Fisher's exact"
    FISHER_RXC = "Fisher-Freeman-Halton exact (Monte Carlo)"
    WELCH = "Welch t-test"
    MANN_WHITNEY = "Mann-Whitney U"
    PAIRED_T = "paired t-test"
    WILCOXON = "Wilcoxon signed-rank"


RULES = (
    (
        "Counts (responders vs non-responders)",
        f"Fisher's exact test when any expected count is below {MIN_EXPECTED_COUNT} (2 x 2 "
        "tables: Fisher's exact; larger tables: Fisher-Freeman-Halton, p estimated by SciPy "
        f"from {MONTE_CARLO_RESAMPLES:,} random tables with a fixed seed); Pearson's "
        "chi-square without continuity correction otherwise. Categories no patient has, and "
        "patients with the item not recorded, are left out of the test.",
    ),
    (
        "Continuous values (responders vs non-responders)",
        "Welch's t-test when each group has at least "
        f"{MIN_N_NORMALITY} patients and Shapiro-Wilk does not reject normality in either "
        f"group (p >= {ALPHA_NORMALITY}); Mann-Whitney U (two-sided) otherwise.",
    ),
    (
        "Before vs after therapy (within a group)",
        f"Paired t-test when at least {MIN_N_NORMALITY} patients have both values and "
        "Shapiro-Wilk does not reject normality of their differences "
        f"(p >= {ALPHA_NORMALITY}); Wilcoxon signed-rank otherwise. Only patients with both "
        "a baseline and a follow-up value count.",
    ),
    (
        "n/a",
        "A test that cannot be computed (a group without patients, a single category, no "
        "variation, or SciPy warning that its result is unreliable) is shown as n/a, with "
        "the reason.",
    ),
)


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation (n - 1) of the values one cell is based on."""

    n: int
    mean: float | None
    sd: float | None

    @property
    def label(self) -> str:
        if self.mean is None:
            return "n/a"
        sd = "n/a" if self.sd is None else f"{self.sd:.1f}"
        return f"{self.mean:.1f} ± {sd}"


@dataclass(frozen=True)
class PValue:
    """One p-value, the test that produced it and how many patients it is based on."""

    test: str
    p: float | None
    n: int
    note: str = ""

    @property
    def p_label(self) -> str:
        if self.p is None:
            return "n/a"
        if self.p < 0.001:
            return "<0.001"
        return f"{self.p:.3f}"

    @property
    def label(self) -> str:
        """`0.032 (Welch t-test)`, or `n/a` when nothing could be tested."""
        if self.p is None:
            return "n/a"
        return f"{self.p_label} ({self.test})"


def no_p_value(*, n: int, note: str) -> PValue:
    return PValue("", None, n, note)


def clean(values: Sequence) -> list[float]:
    """The values as floats, without missing ones (None, NaN)."""
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if not math.isnan(f):
            out.append(f)
    return out


def describe(*, values: Sequence) -> Summary:
    data = np.asarray(clean(values), dtype=float)
    n = int(data.size)
    if n == 0:
        return Summary(0, None, None)
    return Summary(n, float(np.mean(data)), float(np.std(data, ddof=1)) if n >= 2 else None)


def _p_value(test: str, n: int, compute) -> PValue:
    """Run one SciPy test; NaN, an exception or a warning from the test (SciPy's own or
    NumPy's floating-point ones) become n/a with the reason."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # ravel: SciPy's Monte Carlo Fisher returns a 1-element array for some tables.
            p = float(np.asarray(compute().pvalue, dtype=float).ravel()[0])
        except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
            return no_p_value(n=n, note=f"The {test} could not be computed here ({exc}).")
    if caught:
        return no_p_value(
            n=n,
            note=f"SciPy warns that the {test} is not reliable for these values "
            f"({caught[0].message}).",
        )
    if math.isnan(p):
        return no_p_value(n=n, note=f"The {test} is undefined for these values (no variation).")
    return PValue(test, min(p, 1.0), n)


def looks_normal(*, values: Sequence[float]) -> bool:
    """Shapiro-Wilk does not reject normality at ALPHA_NORMALITY (False below
    MIN_N_NORMALITY values, or when the test cannot be computed, e.g. identical values)."""
    if len(values) < MIN_N_NORMALITY:
        return False
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            p = float(stats.shapiro(values).pvalue)
        except ValueError:
            return False
    return not caught and not math.isnan(p) and p >= ALPHA_NORMALITY


# ---- counts ----------------------------------------------------------------------------------


def expected_counts(*, table: Sequence[Sequence[int]]) -> np.ndarray:
    return stats.contingency.expected_freq(np.asarray(table, dtype=float))


def _testable(table: Sequence[Sequence[int]]) -> np.ndarray:
    """The table without the categories (rows) and groups (columns) nobody is in."""
    t = np.asarray(table, dtype=np.int64)
    if t.ndim != 2 or t.size == 0:
        return np.zeros((0, 0), dtype=np.int64)
    t = t[t.sum(axis=1) > 0]
    return t[:, t.sum(axis=0) > 0]


def compare_counts(*, table: Sequence[Sequence[int]]) -> PValue:
    """Responders vs non-responders for one categorical item. `table`: one row per category,
    one column per group (counts). Fisher when any expected count < MIN_EXPECTED_COUNT
    (2 x 2: Fisher's exact; larger: Fisher-Freeman-Halton by Monte Carlo), chi-square
    otherwise."""
    t = _testable(table)
    n = int(t.sum())
    if t.shape[1] < 2:
        return no_p_value(n=n, note="Both groups need at least one patient with this recorded.")
    if t.shape[0] < 2:
        return no_p_value(n=n, note="All patients with this recorded are in one category.")
    if expected_counts(table=t).min() >= MIN_EXPECTED_COUNT:
        return _p_value(Method.CHI_SQUARE, n, lambda: stats.chi2_contingency(t, correction=False))
    if t.shape == (2, 2):
        return _p_value(Method.FISHER, n, lambda: stats.fisher_exact(t))
    return _p_value(Method.FISHER_RXC, n, lambda: stats.fisher_exact(t, method=monte_carlo()))


def monte_carlo() -> stats.MonteCarloMethod:
    return stats.MonteCarloMethod(
        n_resamples=MONTE_CARLO_RESAMPLES, rng=np.random.default_rng(MONTE_CARLO_SEED)
    )


# ---- continuous values -----------------------------------------------------------------------


def compare_groups(*, first: Sequence, second: Sequence) -> PValue:
    """Two independent groups: Welch's t-test when both look normal (Shapiro-Wilk, at least
    MIN_N_NORMALITY each), Mann-Whitney U (two-sided) otherwise."""
    a, b = clean(first), clean(second)
    n = len(a) + len(b)
    if not a or not b:
        return no_p_value(n=n, note="A group has no patient with this value.")
    if looks_normal(values=a) and looks_normal(values=b):
        return _p_value(Method.WELCH, n, lambda: stats.ttest_ind(a, b, equal_var=False))
    return _p_value(
        Method.MANN_WHITNEY, n, lambda: stats.mannwhitneyu(a, b, alternative="two-sided")
    )


def paired(*, before: Sequence, after: Sequence) -> tuple[list[float], list[float]]:
    """The pairs where both values are known."""
    pairs = [
        (float(x), float(y))
        for x, y in zip(before, after, strict=True)
        if x is not None and y is not None and not math.isnan(float(x)) and not math.isnan(float(y))
    ]
    return [x for x, _ in pairs], [y for _, y in pairs]


def compare_paired(*, before: Sequence, after: Sequence) -> PValue:
    """The same patients before and after: paired t-test when the differences look normal
    (Shapiro-Wilk, at least MIN_N_NORMALITY pairs), Wilcoxon signed-rank otherwise."""
    x, y = paired(before=before, after=after)
    n = len(x)
    if n == 0:
        return no_p_value(n=0, note="No patient has both a baseline and a follow-up value.")
    differences = [b - a for a, b in zip(x, y, strict=True)]
    if looks_normal(values=differences):
        return _p_value(Method.PAIRED_T, n, lambda: stats.ttest_rel(x, y))
    return _p_value(Method.WILCOXON, n, lambda: stats.wilcoxon(x, y))


# ---- time to first sperm ---------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    day: int
    proportion: float  # cumulative proportion with sperm by this day (Kaplan-Meier)
    at_risk: int  # patients still followed without sperm just before this day


def cumulative_incidence(*, event_days: Sequence[int], censored_days: Sequence[int]) -> list[Step]:
    """Kaplan-Meier estimate of the proportion of patients with sperm by each day since the
    procedure (1 - survival): `event_days` = day of first sperm of each responder,
    `censored_days` = day of the last follow-up analysis of each patient without sperm.
    Starts at (0, 0); one step per day where a patient was seen with sperm or censored."""
    events, censored = list(event_days), list(censored_days)
    if not events and not censored:
        return []
    steps = [Step(0, 0.0, len(events) + len(censored))]
    if not events:
        return steps + [Step(max(censored), 0.0, sum(1 for c in censored if c >= max(censored)))]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        result = stats.ecdf(stats.CensoredData(uncensored=events, right=censored))
    for day, proportion in zip(result.cdf.quantiles, result.cdf.probabilities, strict=True):
        at_risk = sum(1 for d in events + censored if d >= day)
        steps.append(Step(int(day), float(proportion), at_risk))
    return steps
