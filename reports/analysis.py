"""One row of a plan's table computed on plain values (no database): the plan's summary of each
group and its test, exactly as the row declares them (reports/plan.py, reports/methods.py).
The results selector gathers each group's values from the database and calls `compute_row`;
nothing here chooses a method.

The two groups are the non-responders ("failed") and the responders ("success"), in the
paper's column order. What each variable kind takes (`GroupValues`):
- group (patients):   `count` = the group's number of patients;
- categorical:        `values` = each patient's category (None = not recorded);
- continuous:         `values` = each patient's number (None = missing);
- paired, % change:   `before`, `after` = each patient's pair (same order; None = missing).

Categorical rows count the patients whose category is one of the row's levels; the others
(not recorded, or a category the row does not show) are `not_counted`, reported apart and
left out of the percentages and the test. A % change row's test compares the patients' own
% changes (with the row's denominator and the variable's direction), whatever the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from . import methods
from .plan import Kind, RowSpec


@dataclass(frozen=True)
class GroupValues:
    count: int = 0
    values: Sequence = ()
    before: Sequence = ()
    after: Sequence = ()


@dataclass(frozen=True)
class LevelCounts:
    level: str
    failed: methods.CountPercent
    success: methods.CountPercent


@dataclass(frozen=True)
class RowResult:
    """`failed` / `success`: the summary of each group (MeanSD, MedianIQR, CountPercent or
    PercentChange; None for a categorical row, whose counts are in `levels`, and for a
    within-group row); `test`: the between-group test; `within`: (failed, success) tests of a
    within-group row."""

    row: RowSpec
    failed: object = None
    success: object = None
    test: methods.TestResult | None = None
    levels: tuple[LevelCounts, ...] = ()
    not_counted: tuple[int, int] = (0, 0)
    within: tuple[methods.TestResult, ...] = field(default=())

    def summary_label(self, group: str) -> str:
        """The summary of one group as the plan prints it (its decimals)."""
        value = getattr(self, group)
        if value is None:
            return ""
        if isinstance(value, methods.CountPercent):
            return value.label(self.row.decimals.percent)
        return value.label(self.row.decimals.summary)

    def p_label(self) -> str:
        return self.test.label(self.row.decimals.p) if self.test else ""


def compute_row(row: RowSpec, *, failed: GroupValues, success: GroupValues) -> RowResult:
    kind = row.variable.kind
    if kind == Kind.GROUP:
        total = failed.count + success.count
        return RowResult(
            row, methods.n_percent(failed.count, total), methods.n_percent(success.count, total)
        )
    if kind == Kind.CATEGORICAL:
        return _categorical(row, failed, success)
    if kind == Kind.CONTINUOUS:
        summary = methods.SUMMARIES[row.summary]
        return RowResult(
            row,
            summary(failed.values),
            summary(success.values),
            _test(row, failed.values, success.values),
        )
    if kind == Kind.PAIRED:
        info = row.test_info
        return RowResult(
            row,
            within=(
                info.function(failed.before, failed.after),
                info.function(success.before, success.after),
            ),
        )
    return _percent_change(row, failed, success)


def _test(row: RowSpec, *args) -> methods.TestResult | None:
    return row.test_info.function(*args) if row.test else None


def _categorical(row: RowSpec, failed: GroupValues, success: GroupValues) -> RowResult:
    def counted(values):
        return [v for v in values if v in row.levels]

    f, s = counted(failed.values), counted(success.values)
    levels = tuple(
        LevelCounts(
            level,
            methods.n_percent(f.count(level), len(f)),
            methods.n_percent(s.count(level), len(s)),
        )
        for level in row.levels
    )
    table = [[lc.failed.count, lc.success.count] for lc in levels]
    return RowResult(
        row,
        test=_test(row, table),
        levels=levels,
        not_counted=(len(failed.values) - len(f), len(success.values) - len(s)),
    )


def _percent_change(row: RowSpec, failed: GroupValues, success: GroupValues) -> RowResult:
    spec = row.percent_change

    def change(group: GroupValues, definition: str) -> methods.PercentChange:
        return methods.percent_change(
            group.before,
            group.after,
            definition=definition,
            denominator=spec.denominator,
            direction=row.variable.direction,
        )

    changes = [change(g, spec.definition) for g in (failed, success)]
    if row.summary == "group_value":
        summaries = changes
    else:
        summary = methods.SUMMARIES[row.summary]
        summaries = [
            _na(row.summary, c.reason) if c.value is None else summary(c.individual)
            for c in changes
        ]
    test = _test(row, *(c.individual for c in changes))
    if test is not None and test.p is None:
        # say why a group has no own % changes (e.g. a zero baseline), not "a group is empty"
        reason = next((c.individual_reason for c in changes if c.individual_reason), "")
        if reason:
            test = methods.TestResult(test.test, test.name, None, test.n, reason=reason)
    return RowResult(row, summaries[0], summaries[1], test)


def _na(summary: str, reason: str):
    if summary == "median_iqr":
        return methods.MedianIQR(0, None, None, None, reason)
    return methods.MeanSD(0, None, None, reason)
