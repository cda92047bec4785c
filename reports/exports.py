"""The results tables as CSV rows and as a PDF (WeasyPrint). Both are made from the same
`reports.selectors.Results` the page shows, so the three never disagree."""

from datetime import date

from django.utils import timezone

from core.pdf import render_pdf

from .selectors import Results, ResultsTable
from .statistics import PValue, Summary

CSV_HEADER = (
    "subgroup",
    "item",
    "category",
    "all_n",
    "responders_n",
    "responders_percent",
    "responders_mean",
    "responders_sd",
    "non_responders_n",
    "non_responders_percent",
    "non_responders_mean",
    "non_responders_sd",
    "p_value",
    "test",
    "patients_in_test",
    "note",
)


def _f(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def _p(test: PValue | None) -> list[str]:
    if test is None:
        return ["", "", "", ""]
    p = "" if test.p is None else f"{test.p:.4g}"
    return [p, test.test, str(test.n), test.note]


def _summary(s: Summary) -> list[str]:
    return [str(s.n), "", _f(s.mean, 2), _f(s.sd, 2)]


def _table_rows(table: ResultsTable) -> list[list[str]]:
    t = table
    rows = [
        [
            t.title,
            "Patients",
            "evaluable (responders / non-responders)",
            str(t.evaluable),
            str(t.responders),
            _f(t.responder_percent, 1),
            "",
            "",
            str(t.non_responders),
            _f(t.non_responder_percent, 1),
            "",
            "",
            *_p(None),
        ],
        [
            t.title,
            "Patients",
            "not yet evaluable (treated, no follow-up semen analysis)",
            str(t.not_evaluable),
            *[""] * 8,
            *_p(None),
        ],
        [
            t.title,
            t.age.label,
            "mean, SD",
            str(t.age.responders.n + t.age.non_responders.n),
            *_summary(t.age.responders),
            *_summary(t.age.non_responders),
            *_p(t.age.test),
        ],
    ]
    for count in t.counts:
        label = count.characteristic.label
        if not count.shown_rows:
            rows.append([t.title, label, "none recorded", "0", *[""] * 8, *_p(count.test)])
        for i, row in enumerate(count.shown_rows):
            r, n = row.responders, row.non_responders
            rows.append(
                [
                    t.title,
                    label,
                    row.label,
                    str(r.count + n.count),
                    str(r.count),
                    _f(r.percent, 1),
                    "",
                    "",
                    str(n.count),
                    _f(n.percent, 1),
                    "",
                    "",
                    *_p(count.test if i == 0 else None),
                ]
            )
        missing_r, missing_n = count.not_recorded
        if missing_r or missing_n:
            rows.append(
                [
                    t.title,
                    label,
                    "not recorded",
                    str(missing_r + missing_n),
                    str(missing_r),
                    "",
                    "",
                    "",
                    str(missing_n),
                    "",
                    "",
                    "",
                    *_p(None),
                ]
            )
    for h in t.hormones:
        item = f"{h.label} ({h.unit})"
        for row in (h.before, h.after, h.change):
            rows.append(
                [
                    t.title,
                    item,
                    row.label,
                    str(row.responders.n + row.non_responders.n),
                    *_summary(row.responders),
                    *_summary(row.non_responders),
                    *_p(row.test),
                ]
            )
        for group, test in (
            ("responders", h.within_responders),
            ("non-responders", h.within_non_responders),
        ):
            rows.append(
                [t.title, item, f"before vs after, {group}", str(test.n), *[""] * 8, *_p(test)]
            )
    return rows


def results_filename(*, results: Results, extension: str, day: date | None = None) -> str:
    """noa-msc-results-<site code or all-sites>-<local date>.<extension>"""
    scope = results.site.code if results.site else "all-sites"
    return f"noa-msc-results-{scope}-{day or timezone.localdate():%Y-%m-%d}.{extension}"


def results_csv_rows(*, results: Results) -> list[list[str]]:
    """The header, then one row per cell line of every table (overall, SCOS, arrest)."""
    rows = [list(CSV_HEADER)]
    for table in results.tables:
        rows.extend(_table_rows(table))
    return rows


# ---- PDF -------------------------------------------------------------------------------------


def results_pdf(*, results: Results, user) -> bytes:
    return render_pdf(
        template_name="reports/results_pdf.html",
        context={"results": results, "generated_at": timezone.now(), "generated_by": user},
    )
