"""The results tables as CSV rows and as a PDF (WeasyPrint). Both are made from the same
`reports.selectors.Results` the page shows, so the three never disagree."""

from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import timezone

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


def static_url_fetcher(url: str, timeout: int = 10, ssl_context=None) -> dict:
    """WeasyPrint's fetcher: files under STATIC_URL are read from disk (the staticfiles
    finders), anything else is refused, so rendering a PDF never goes over the network."""
    path = urlsplit(url).path
    if not path.startswith(settings.STATIC_URL):
        raise ValueError(f"Only static files are available to the PDF renderer, not {url}")
    found = finders.find(path[len(settings.STATIC_URL) :])
    if not found:
        raise ValueError(f"Static file not found: {path}")
    mime = "text/css" if found.endswith(".css") else None
    return {"string": Path(found).read_bytes(), "mime_type": mime, "redirected_url": url}


# Relative and /static/ URLs resolve against this; the fetcher serves them from disk.
PDF_BASE_URL = "https://edc.invalid/"


def results_pdf(*, results: Results, user) -> bytes:
    import weasyprint  # heavy import (Pango): only when a PDF is asked for

    html = render_to_string(
        "reports/results_pdf.html",
        {"results": results, "generated_at": timezone.now(), "generated_by": user},
    )
    return weasyprint.HTML(
        string=html, base_url=PDF_BASE_URL, url_fetcher=static_url_fetcher
    ).write_pdf()
