"""The one CSV writer of the app: every CSV it produces (exports, the datasets ZIP, the audit
trail and review, consent audit, user access, results) is written here.

Cells are neutralised against formula injection (OWASP "CSV Injection"): a spreadsheet runs a
cell whose text begins with `=`, `+`, `-`, `@`, tab or carriage return as a formula, so such a
cell gets a leading `'`, which the spreadsheet shows as text. A reason for change typed as
`=HYPERLINK("http://evil","click")` then reads as that text, not a link.

`streaming_csv_response(rows, filename=...)` is the one way a view sends a CSV: the rows come
from a selector, a generator that yields the header row first, then one row per record.

Numbers are data, not formulas: a negative value (`-3.5`, a % change of `-12.50`) must reach
the statistician as a number, so a cell that is an int, float or Decimal, or a string that is
exactly a number, is written unchanged. Only CSV goes through here: the ODM XML export keeps
every value as it was entered."""

import csv
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, Protocol

from django.http import StreamingHttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A plain decimal number, optionally signed, with an optional exponent: "-3.5", "+2", "-1e-05".
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """The value to write in a CSV cell: text that a spreadsheet would run as a formula gets a
    leading `'`; numbers (and strings that are exactly a number) and None stay as they are."""
    if value is None or isinstance(value, bool | int | float | Decimal):
        # Numbers are written as numbers: a negative value is data, never a formula.
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(text):
        return "'" + text
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in row]


class _Writable(Protocol):
    def write(self, value: str, /) -> Any: ...


class Writer:
    """`csv.writer` with every cell passed through `safe_cell`."""

    def __init__(self, file: _Writable):
        self._writer = csv.writer(file)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class _Echo:
    """A pseudo-buffer whose write() returns the line, so the writer can be used in a generator
    feeding a StreamingHttpResponse."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """One CSV line (with its line ending) per row, for a StreamingHttpResponse or a ZIP."""
    writer = Writer(_Echo())
    for row in rows:
        yield writer.writerow(row)


def streaming_csv_response(
    rows: Iterable[Iterable[Any]], *, filename: str, content_type: str = "text/csv"
) -> StreamingHttpResponse:
    """A CSV download written row by row as it is sent (`rows`: the header row first), as an
    attachment named `filename`."""
    response = StreamingHttpResponse(csv_lines(rows), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
