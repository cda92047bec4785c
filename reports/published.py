"""The values a results paper printed, as data (reports/published/<registry id>.json), for the
published-versus-computed review: each printed cell beside the value computed under a plan.

The file (JSON):

    {"format": 1, "registry_id": "NCT02025270", "source": "...",
     "groups": {"failed": "...", "success": "...", "p": "P"},
     "tables": [{"code": "table1", "title": "..."}, ...],
     "notes":  [{"code": "patients_typo", "text": "..."}, ...],
     "cells":  [CELL, ...]}

    CELL = {"table": "table1",          a table of "tables" (the plan's table codes)
            "row": "karyotype",         a variable of reports.plan.VARIABLES (the plan's row)
            "level": "47,XXY",          categorical counts only: the category
            "group": "failed",          failed | success | p (a within-group P is the
                                        failed / success cell of the *_within row)
            "kind": "n",                how the printed text reads (KINDS)
            "printed": "11",            verbatim, typos kept ("1 (20.7%)", "< 0.007")
            "values": {"n": 11},        the numbers parsed from `printed`
            "notes": ["..."]}           optional: codes of the notes that concern the cell

One cell per printed number or pair: a printed "35 / 34" (one count per category) is one
cell per category, a printed "19.67 ± 8.5 / 15.2 ± 13.3" (before / after) one cell for the
before row and one for the after row; the printed text of each part is kept verbatim.

Kinds and their statistics: n ("35" -> n), n_percent ("69 (79.3%)" -> n, percent), mean_sd
("36.9 ± 7.35" -> mean, sd), p ("0.269", "P = 0.016" -> p; "< 0.001", "P < 0.001" ->
p_bound: the p-value printed only as below this bound), percent_change ("20.32" ->
percent_change).

`recompute_counts_p` recomputes a categorical row's p-value from the printed counts under
chi-square and Fisher, so the review can say "p < 0.001 printed; chi-square on the printed
counts gives 0.104, Fisher 0.188".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from . import methods
from .plan import VARIABLES, Kind

FORMAT = 1
PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
GROUPS = ("failed", "success", "p")
KINDS = {
    "n": ("n",),
    "n_percent": ("n", "percent"),
    "mean_sd": ("mean", "sd"),
    "p": ("p", "p_bound"),
    "percent_change": ("percent_change",),
}
TOP_KEYS = {
    "format": True, "registry_id": True, "source": True, "groups": True, "tables": True,
    "notes": True, "cells": True,
}  # fmt: skip
CELL_KEYS = {
    "table": True, "row": True, "group": True, "kind": True, "printed": True, "values": True,
    "level": False, "notes": False,
}  # fmt: skip

_NUMBER = r"(\d+(?:\.\d+)?)"
_PATTERNS = {
    "n": re.compile(r"^(\d+)$"),
    "n_percent": re.compile(r"^(\d+) \(" + _NUMBER + r"%\)$"),
    "mean_sd": re.compile(r"^" + _NUMBER + r" ± " + _NUMBER + r"$"),
    "p": re.compile(r"^(?:P\s*)?(=|<)?\s*" + _NUMBER + r"$"),
    "percent_change": re.compile(r"^" + _NUMBER + r"$"),
}


def parse(kind: str, printed: str) -> dict[str, float]:
    """The numbers of a printed value: parse("p", "< 0.001") == {"p_bound": 0.001},
    parse("mean_sd", "36.9 ± 7.35") == {"mean": 36.9, "sd": 7.35}. ValueError when the text
    does not read as `kind`."""
    pattern = _PATTERNS.get(kind)
    if pattern is None:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    match = pattern.match(printed.strip())
    if not match:
        raise ValueError(f"{printed!r} does not read as {kind}")
    if kind == "n":
        return {"n": int(match[1])}
    if kind == "n_percent":
        return {"n": int(match[1]), "percent": float(match[2])}
    if kind == "mean_sd":
        return {"mean": float(match[1]), "sd": float(match[2])}
    if kind == "p":
        return {"p_bound" if match[1] == "<" else "p": float(match[2])}
    return {"percent_change": float(match[1])}


def decimals_of(printed_number: str) -> int:
    """How many decimals a printed number has ("0.070" -> 3, "48" -> 0)."""
    exponent = Decimal(printed_number).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def read(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def path_for(registry_id: str) -> Path:
    return PUBLISHED_DIR / f"{registry_id.lower()}.json"


def problems(data: dict) -> tuple[list[str], list[str]]:
    """(errors, warnings) of a published-values file."""
    errors: list[str] = []
    warnings: list[str] = []
    if not isinstance(data, dict):
        return ["published: must be an object"], warnings
    for key, required in TOP_KEYS.items():
        if required and key not in data:
            errors.append(f"published: missing key '{key}'")
    for key in data:
        if key not in TOP_KEYS:
            errors.append(f"published: unknown key '{key}'")
    if data.get("format", FORMAT) != FORMAT:
        errors.append(f"published: format {data.get('format')!r} is not {FORMAT}")
    for key in ("registry_id", "source"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            errors.append(f"published: '{key}' must be a non-empty text")
    for key in ("tables", "notes", "cells"):
        if not isinstance(data.get(key, []), list):
            errors.append(f"published: '{key}' must be a list")
            return errors, warnings
    tables: set[str] = set()
    notes: list[str] = []
    for kind, found in (("tables", tables), ("notes", notes)):
        text = "title" if kind == "tables" else "text"
        for i, item in enumerate(data.get(kind, [])):
            if (
                not isinstance(item, dict)
                or set(item) != {"code", text}
                or not all(isinstance(v, str) and v for v in item.values())
            ):
                errors.append(f'published: {kind}[{i}] must be {{"code": ..., "{text}": ...}}')
            elif isinstance(found, set):
                found.add(item["code"])
            else:
                found.append(item["code"])
    if len(notes) != len(set(notes)):
        errors.append("published: a note code is used twice")
    used_notes: set[str] = set()
    seen: set[str] = set()
    for i, cell in enumerate(data.get("cells", [])):
        where = f"cells[{i}]"
        if not isinstance(cell, dict):
            errors.append(f"{where}: must be an object")
            continue
        where = (
            f"cell {cell.get('table')}/{cell.get('row')}"
            + (f"/{cell['level']}" if cell.get("level") else "")
            + f"/{cell.get('group')}"
        )
        missing = [k for k, required in CELL_KEYS.items() if required and k not in cell]
        unknown = [k for k in cell if k not in CELL_KEYS]
        if missing or unknown:
            errors += [f"{where}: missing key '{k}'" for k in missing]
            errors += [f"{where}: unknown key '{k}'" for k in unknown]
            continue
        if not (isinstance(cell["table"], str) and cell["table"] in tables):
            errors.append(f"{where}: unknown table {cell['table']!r}")
        variable = VARIABLES.get(cell["row"]) if isinstance(cell["row"], str) else None
        if variable is None:
            errors.append(f"{where}: unknown row {cell['row']!r} (a variable of the plan)")
        elif variable.kind == Kind.CATEGORICAL and cell["group"] != "p":
            if cell.get("level") not in variable.levels:
                errors.append(
                    f"{where}: {cell.get('level')!r} is not a category of {variable.code}"
                )
        elif cell.get("level") is not None:
            errors.append(f"{where}: only a count of a category has a level")
        if cell["group"] not in GROUPS:
            errors.append(f"{where}: unknown group {cell['group']!r} (known: {', '.join(GROUPS)})")
        key = repr((cell["table"], cell["row"], cell.get("level"), cell["group"]))
        if key in seen:
            errors.append(f"{where}: the cell is listed twice")
        seen.add(key)
        try:
            if not isinstance(cell["kind"], str) or not isinstance(cell["printed"], str):
                raise ValueError("kind and printed must be texts")
            parsed = parse(cell["kind"], cell["printed"])
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
        else:
            if parsed != cell["values"]:
                errors.append(
                    f"{where}: values {cell['values']} are not what {cell['printed']!r} reads "
                    f"({parsed})"
                )
        cell_notes = cell.get("notes", [])
        if not isinstance(cell_notes, list):
            errors.append(f"{where}: notes must be a list of note codes")
            cell_notes = []
        for note in cell_notes:
            if not isinstance(note, str):
                errors.append(f"{where}: unknown note {note!r}")
                continue
            used_notes.add(note)
            if note not in notes:
                errors.append(f"{where}: unknown note {note!r}")
    for note in notes:
        if note not in used_notes:
            warnings.append(f"published: note {note!r} is attached to no cell")
    return errors, warnings


@dataclass(frozen=True)
class Note:
    code: str
    text: str


@dataclass(frozen=True)
class Cell:
    table: str
    row: str
    level: str | None
    group: str
    kind: str
    printed: str
    values: tuple[tuple[str, float], ...]
    notes: tuple[Note, ...] = ()

    def value(self, statistic: str) -> float | None:
        return dict(self.values).get(statistic)


@dataclass(frozen=True)
class Published:
    registry_id: str
    source: str
    tables: tuple[tuple[str, str], ...]  # (code, title)
    cells: tuple[Cell, ...]

    def cells_of(self, table: str, row: str | None = None) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.table == table and (row is None or c.row == row))

    def cell(self, table: str, row: str, group: str, level: str | None = None) -> Cell:
        return next(
            c
            for c in self.cells
            if (c.table, c.row, c.group, c.level) == (table, row, group, level)
        )

    def counts(self, table: str, row: str) -> tuple[tuple[str, ...], list[list[int]]]:
        """(categories in printed order, [[failed, success] per category]) of a categorical
        row, from the printed counts."""
        levels: list[str] = []
        for c in self.cells_of(table, row):
            if c.level is not None and c.level not in levels:
                levels.append(c.level)
        counts = [
            [int(self.cell(table, row, group, level).value("n")) for group in ("failed", "success")]
            for level in levels
        ]
        return tuple(levels), counts


class PublishedError(ValueError):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def load(data: dict) -> Published:
    errors, _ = problems(data)
    if errors:
        raise PublishedError(errors)
    notes = {n["code"]: Note(n["code"], n["text"]) for n in data["notes"]}
    return Published(
        registry_id=data["registry_id"],
        source=data["source"],
        tables=tuple((t["code"], t["title"]) for t in data["tables"]),
        cells=tuple(
            Cell(
                table=c["table"],
                row=c["row"],
                level=c.get("level"),
                group=c["group"],
                kind=c["kind"],
                printed=c["printed"],
                values=tuple(c["values"].items()),
                notes=tuple(notes[n] for n in c.get("notes", [])),
            )
            for c in data["cells"]
        ),
    )


def load_for(registry_id: str) -> Published:
    return load(read(path_for(registry_id)))


# ---- does a printed value follow? ------------------------------------------------------------


def agrees(cell: Cell, statistic: str, value: float | None) -> bool:
    """Whether `value` (full precision) prints as the cell does: rounded to the printed
    decimals it equals the printed number, or for a "< bound" p-value it is below the bound."""
    if value is None:
        return False
    bound = cell.value("p_bound")
    if statistic == "p" and bound is not None:
        return value < bound
    printed = cell.value(statistic)
    if printed is None:
        return False
    text = _printed_number(cell, statistic)
    return round(value, decimals_of(text)) == round(printed, decimals_of(text))


def _printed_number(cell: Cell, statistic: str) -> str:
    """The printed text of one statistic of a cell ("7.35" of "36.9 ± 7.35")."""
    numbers = re.findall(_NUMBER, cell.printed)
    position = KINDS[cell.kind].index(statistic) if statistic in KINDS[cell.kind] else 0
    if cell.kind == "p":
        position = 0
    return numbers[position]


@dataclass(frozen=True)
class Recomputation:
    """A categorical row's printed p-value against the p-values of its printed counts."""

    table: str
    row: str
    printed: Cell
    chi_square: methods.TestResult
    fisher: methods.TestResult

    @property
    def chi_square_agrees(self) -> bool:
        return agrees(self.printed, "p", self.chi_square.p)

    @property
    def fisher_agrees(self) -> bool:
        return agrees(self.printed, "p", self.fisher.p)

    @property
    def follows(self) -> bool:
        """The printed p follows from the printed counts under one of the two tests."""
        return self.chi_square_agrees or self.fisher_agrees

    @property
    def explanation(self) -> str:
        """`p < 0.001 printed; chi-square on the printed counts gives 0.104, Fisher 0.188`."""
        printed = self.printed.printed.strip()
        if printed.upper().startswith("P"):
            printed = printed[1:].strip()
        printed = printed if printed.startswith("<") else f"= {printed}"
        fisher_name = "Fisher" if self.fisher.test == "fisher" else "Fisher-Freeman-Halton"
        return (
            f"p {printed} printed; chi-square on the printed counts gives "
            f"{_p3(self.chi_square)}, {fisher_name} {_p3(self.fisher)}"
        )


def _p3(result: methods.TestResult) -> str:
    return f"n/a ({result.reason})" if result.p is None else f"{result.p:.3f}"


def recompute_counts_p(published: Published, *, table: str, row: str) -> Recomputation:
    """The printed p of a categorical row beside Pearson's chi-square (no continuity
    correction) and Fisher's exact test (Fisher-Freeman-Halton when, without the categories
    nobody is in, the table is larger than 2 x 2) computed on the printed counts."""
    _, counts = published.counts(table, row)
    nonempty = [c for c in counts if sum(c) > 0]
    fisher = methods.fisher if len(nonempty) == 2 else methods.fisher_freeman_halton
    return Recomputation(
        table=table,
        row=row,
        printed=published.cell(table, row, "p"),
        chi_square=methods.chi_square(counts),
        fisher=fisher(counts),
    )
