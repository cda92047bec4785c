"""The computed results as JSON (a ResultsSnapshot's payload) and back.

What is stored is what the computation produced: the tables (counts, summaries, p-values
with their test and note) and the study charts' SVG. Who looks at them (the user's sites,
the site filter) is not stored: the page adds it from the request, so a payload holds no
object of the database, only numbers and text.

FORMAT is the layout below. A payload of another format (written by an older release) is
not read: the caller recomputes. Non-finite floats (a mean of an infinite value, a NaN SD)
are stored as the strings "nan", "inf", "-inf", since JSON (and PostgreSQL's jsonb) has no
such numbers."""

import math
from typing import Any

from django.utils.safestring import mark_safe

from .selectors import (
    CHARACTERISTICS,
    Chart,
    ContinuousRow,
    CountCell,
    CountRow,
    CountTable,
    HormoneBlock,
    ResultsTable,
)
from .statistics import PValue, Summary

FORMAT = 1


class UnreadablePayload(ValueError):
    """A payload this release cannot read (another format, an unknown characteristic)."""


def _float_out(value) -> float | str | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _float_in(value) -> float | None:
    return None if value is None else float(value)


def _summary_out(s: Summary) -> dict:
    return {"n": int(s.n), "mean": _float_out(s.mean), "sd": _float_out(s.sd)}


def _summary_in(d: dict) -> Summary:
    return Summary(d["n"], _float_in(d["mean"]), _float_in(d["sd"]))


def _p_out(p: PValue) -> dict:
    return {"test": p.test, "p": _float_out(p.p), "n": int(p.n), "note": p.note}


def _p_in(d: dict) -> PValue:
    return PValue(d["test"], _float_in(d["p"]), d["n"], d["note"])


def _row_out(r: ContinuousRow) -> dict:
    return {
        "code": r.code,
        "label": r.label,
        "responders": _summary_out(r.responders),
        "non_responders": _summary_out(r.non_responders),
        "test": _p_out(r.test),
    }


def _row_in(d: dict) -> ContinuousRow:
    return ContinuousRow(
        d["code"],
        d["label"],
        _summary_in(d["responders"]),
        _summary_in(d["non_responders"]),
        _p_in(d["test"]),
    )


def _count_out(t: CountTable) -> dict:
    return {
        "characteristic": t.characteristic.code,
        "rows": [
            [
                r.level,
                r.label,
                [int(r.responders.count), int(r.responders.of)],
                [int(r.non_responders.count), int(r.non_responders.of)],
            ]
            for r in t.rows
        ],
        "not_recorded": [int(n) for n in t.not_recorded],
        "test": _p_out(t.test),
    }


_CHARACTERISTICS = {ch.code: ch for ch in CHARACTERISTICS}


def _count_in(d: dict) -> CountTable:
    characteristic = _CHARACTERISTICS.get(d["characteristic"])
    if characteristic is None:
        raise UnreadablePayload(f"unknown characteristic {d['characteristic']!r}")
    return CountTable(
        characteristic,
        [
            CountRow(level, label, CountCell(*responders), CountCell(*non_responders))
            for level, label, responders, non_responders in d["rows"]
        ],
        tuple(d["not_recorded"]),
        _p_in(d["test"]),
    )


def _hormone_out(h: HormoneBlock) -> dict:
    return {
        "code": h.code,
        "label": h.label,
        "unit": h.unit,
        "before": _row_out(h.before),
        "after": _row_out(h.after),
        "change": _row_out(h.change),
        "change_formula": h.change_formula,
        "within_responders": _p_out(h.within_responders),
        "within_non_responders": _p_out(h.within_non_responders),
    }


def _hormone_in(d: dict) -> HormoneBlock:
    return HormoneBlock(
        code=d["code"],
        label=d["label"],
        unit=d["unit"],
        before=_row_in(d["before"]),
        after=_row_in(d["after"]),
        change=_row_in(d["change"]),
        change_formula=d["change_formula"],
        within_responders=_p_in(d["within_responders"]),
        within_non_responders=_p_in(d["within_non_responders"]),
    )


def _table_out(t: ResultsTable) -> dict:
    return {
        "code": t.code,
        "title": t.title,
        "responders": int(t.responders),
        "non_responders": int(t.non_responders),
        "not_evaluable": int(t.not_evaluable),
        "age": _row_out(t.age),
        "counts": [_count_out(c) for c in t.counts],
        "hormones": [_hormone_out(h) for h in t.hormones],
    }


def _table_in(d: dict) -> ResultsTable:
    return ResultsTable(
        code=d["code"],
        title=d["title"],
        responders=d["responders"],
        non_responders=d["non_responders"],
        not_evaluable=d["not_evaluable"],
        age=_row_in(d["age"]),
        counts=[_count_in(c) for c in d["counts"]],
        hormones=[_hormone_in(h) for h in d["hormones"]],
    )


def dump(*, enrolled: int, not_treated: int, tables: list, charts: list) -> dict[str, Any]:
    """The payload of computed results (reports.selectors.Results' computed part)."""
    return {
        "enrolled": int(enrolled),
        "not_treated": int(not_treated),
        "tables": [_table_out(t) for t in tables],
        "charts": [{"title": c.title, "svg": str(c.svg), "caption": c.caption} for c in charts],
    }


def load(payload: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of reports.selectors.Results (without site and sites) from a
    payload of FORMAT. The SVG was written by reports.charts (escaped there) and is stored
    only by the results job: it is marked safe again as it was when computed."""
    try:
        return {
            "enrolled": payload["enrolled"],
            "not_treated": payload["not_treated"],
            "tables": [_table_in(t) for t in payload["tables"]],
            "charts": [
                Chart(c["title"], mark_safe(c["svg"]), c["caption"])  # noqa: S308
                for c in payload["charts"]
            ],
        }
    except (KeyError, TypeError, ValueError) as error:
        raise UnreadablePayload(str(error)) from error
