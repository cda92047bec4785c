"""The statistical analysis plan (SAP) as data: the file format, its reader and validator, and
the loaded, typed plan. In the style of trial/protocol_file.py: `read(path)` gives the raw
data, `problems(data, protocol=...)` -> (errors, warnings) says precisely what is wrong,
`load(data)` gives a frozen `Plan` (or raises PlanError with the errors). A system check
(reports/checks.py) validates the shipped plans at start-up.

Plans live beside the protocol file, named `<protocol file stem>.sap-<name>.json`
(trial/protocols/nct02025270.sap-as-published.json). No test is chosen from the data unless
the plan says so: `auto_*` tests are refused unless the plan sets
"allow_data_driven_tests": true.

The format (JSON; every key below is checked, an unknown key is an error, so a typo cannot
pass silently):

    {
      "format": 1,
      "plan_id": "NCT02025270-SAP-AS-PUBLISHED",      # stable id, [A-Za-z0-9._-]
      "title": "...", "version": "1.0",
      "protocol": "NCT02025270",                       # the protocol file's registry_id
      "description": "...",                            # optional, free text
      "allow_data_driven_tests": false,                # optional, default false
      "defaults": {"decimals": {"summary": 1, "percent": 1, "p": 3}},   # optional
      "populations": [
        {"code": "all_treated", "label": "All treated patients", "rule": RULE}, ...
      ],
      "responder": {
        "definition": "...",                           # the words shown with the tables
        "event": "sperm_in_ejaculate",                 # the one event known (EVENTS)
        "classifiable": RULE,                          # a non-responder counts as such only
                                                       # when this holds; others are "not
                                                       # yet classifiable", counted apart
        "labels": {"responder": "Success", "non_responder": "Failed",
                   "not_classifiable": "Not yet classifiable"}
      },
      "tables": [
        {"code": "table1", "title": "...", "population": "all_treated",
         "subgroup": null | {"variable": "biopsy", "in": ["SCOS"]},
         "rows": [ROW, ...]}
      ]
    }

RULE (who is in a population; evaluated on a patient's `PatientFacts`):
    {"treated": true|false}            an injection is recorded
    {"eligible": true|false}           every inclusion criterion met, no exclusion criterion
    {"visit": "M12"}                   the visit took place (a live record at that visit code;
                                       the code must be a visit of the protocol file)
    {"end_of_study": ["COMPLETED"]}    an end-of-study form with one of these statuses
                                       (followup.EndOfStudy.Status values)
    {"population": "completers"}       in another population of the plan (no cycles)
    {"all": [RULE, ...]}, {"any": [RULE, ...]}, {"not": RULE}

ROW:
    {"code": "age",                    unique within its table
     "variable": "age",                one of VARIABLES (below)
     "label": "...",                   optional (default: the variable's label)
     "summary": "mean_sd",             mean_sd | median_iqr (continuous, % change of
                                       individual changes), n_percent (categorical, group),
                                       group_value (% change of group means), none (within)
     "test": "student_t" | null,       a test of reports.methods.TESTS that fits the variable
     "levels": ["46,XY", "47,XXY"],    optional, categorical only: the categories shown and
                                       tested, in order (default: every category)
     "percent_change": {"definition": "change_of_group_means" | "mean_of_individual_changes",
                        "denominator": "before" | "after"},   % change rows only (required)
     "decimals": {"summary": 2, "percent": 1, "p": 3},        optional, overrides defaults
     "note": "..."}                    optional, free text (shown with the row)

Variables (VARIABLES): age (continuous); testicular_size, examination, biopsy, karyotype, azf
(categorical, with their categories); fsh_before, fsh_after, lh_..., testosterone_...
(continuous); fsh_within, ... (paired: before vs after within each group); fsh_percent_change,
... (percent_change; FSH and LH count a fall as positive, testosterone a rise); patients
(group sizes, n (%), no test).

Tests by variable kind: categorical -> chi_square, chi_square_yates, fisher (2 x 2),
fisher_freeman_halton, auto_counts; continuous and percent_change -> student_t, welch_t,
mann_whitney, auto_two_groups (a % change test compares the patients' own % changes, with
the row's denominator); paired -> paired_t, wilcoxon, auto_paired; patients -> none.
Decimals: summary and percent 0..6, p 1..6.

The loaded plan: `Plan` (plan_id, title, version, protocol, populations, responder, tables,
sha256), `Population` (code, label, `Rule`), `ResponderDefinition`, `TableSpec` (code, title,
population, `Subgroup`, rows), `RowSpec` (code, `Variable`, label, summary, test, levels,
`Decimals`, `PercentChangeSpec`), all frozen. `Plan.includes(population, facts)` and
`Plan.classify(facts)` decide on a patient's `PatientFacts` (plain data the selector builds):
classify gives "responder" (the event seen at any follow-up analysis, however short the
follow-up), "non_responder" (not seen, and `classifiable` holds: followed to the end) or
"not_classifiable" (not seen so far, follow-up incomplete: counted apart, never as a
non-responder). reports/analysis.py computes one row on plain values.

The plan's hash (`Plan.sha256`, `content_hash(data)`) is the SHA-256 of the canonical JSON of
the file's data (keys sorted, no insignificant whitespace, UTF-8): reformatting the file does
not change it, any change of content does. It is the hash printed on the reports and signed
when the plan is locked (ICH E9).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from followup.models import EndOfStudy
from patients.models import AzfMicrodeletion, Biopsy, Karyotype

from . import methods

FORMAT = 1
PLAN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DECIMALS_RANGE = {"summary": (0, 6), "percent": (0, 6), "p": (1, 6)}
DEFAULT_DECIMALS = {"summary": 1, "percent": 1, "p": 3}
EVENTS = {"sperm_in_ejaculate": "sperm seen in the ejaculate at any follow-up semen analysis"}
GROUP_KEYS = ("responder", "non_responder", "not_classifiable")


class Kind:
    CONTINUOUS = "continuous"
    CATEGORICAL = "categorical"
    PAIRED = "paired"
    PERCENT_CHANGE = "percent_change"
    GROUP = "group"


@dataclass(frozen=True)
class Variable:
    code: str
    label: str
    kind: str
    levels: tuple[str, ...] = ()
    hormone: str = ""
    direction: str = ""  # percent_change: "fall" or "rise" counts as positive


# The examination categories (reports.selectors.ExamCategory, repeated here so the plan does
# not depend on the page's code; tests/reports/test_plan.py checks they agree).
EXAMINATION_LEVELS = ("normal", "varicocele", "cryptorchidism")
TESTICULAR_SIZE_LEVELS = ("normal", "small")
HORMONES = (("fsh", "FSH", "fall"), ("lh", "LH", "fall"), ("testosterone", "Testosterone", "rise"))


def _variables() -> dict[str, Variable]:
    found = [
        Variable("patients", "Patients", Kind.GROUP),
        Variable("age", "Age at enrolment (years)", Kind.CONTINUOUS),
        Variable("testicular_size", "Testicular size", Kind.CATEGORICAL, TESTICULAR_SIZE_LEVELS),
        Variable("examination", "Examination", Kind.CATEGORICAL, EXAMINATION_LEVELS),
        Variable("biopsy", "Biopsy", Kind.CATEGORICAL, tuple(Biopsy.Histology.values)),
        Variable("karyotype", "Karyotype", Kind.CATEGORICAL, tuple(Karyotype.Result.values)),
        Variable("azf", "Y microdeletion", Kind.CATEGORICAL, tuple(AzfMicrodeletion.Result.values)),
    ]
    for code, label, direction in HORMONES:
        found += [
            Variable(f"{code}_before", f"{label} before", Kind.CONTINUOUS, hormone=code),
            Variable(f"{code}_after", f"{label} after", Kind.CONTINUOUS, hormone=code),
            Variable(
                f"{code}_within",
                f"{label} before vs after (within group)",
                Kind.PAIRED,
                hormone=code,
            ),
            Variable(
                f"{code}_percent_change",
                f"{label} % change",
                Kind.PERCENT_CHANGE,
                hormone=code,
                direction=direction,
            ),
        ]
    return {v.code: v for v in found}


VARIABLES = _variables()

# What fits what.
TEST_SHAPE = {
    Kind.CATEGORICAL: "counts",
    Kind.CONTINUOUS: "two_groups",
    Kind.PERCENT_CHANGE: "two_groups",
    Kind.PAIRED: "paired",
}
SUMMARIES_OF = {
    Kind.CATEGORICAL: ("n_percent",),
    Kind.GROUP: ("n_percent",),
    Kind.CONTINUOUS: ("mean_sd", "median_iqr"),
    Kind.PERCENT_CHANGE: ("mean_sd", "median_iqr", "group_value"),
    Kind.PAIRED: ("none",),
}
SUMMARIES = ("mean_sd", "median_iqr", "n_percent", "group_value", "none")

TOP_KEYS = {
    "format": True, "plan_id": True, "title": True, "version": True, "protocol": True,
    "populations": True, "responder": True, "tables": True,
    "description": False, "allow_data_driven_tests": False, "defaults": False,
}  # fmt: skip
POPULATION_KEYS = {"code": True, "label": True, "rule": True, "note": False}
RESPONDER_KEYS = {"definition": True, "event": True, "classifiable": True, "labels": True}
TABLE_KEYS = {
    "code": True, "title": True, "population": True, "rows": True,
    "subgroup": False, "note": False,
}  # fmt: skip
ROW_KEYS = {
    "code": True, "variable": True, "summary": True, "test": True,
    "label": False, "levels": False, "percent_change": False, "decimals": False, "note": False,
}  # fmt: skip
RULE_ATOMS = ("treated", "eligible", "visit", "end_of_study", "population")
RULE_GROUPS = ("all", "any", "not")


class PlanError(ValueError):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


# ---- reading and hashing ---------------------------------------------------------------------


def read(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def canonical_json(data: dict) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(data: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of the plan's data."""
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def plan_files(protocol_path: Path) -> list[Path]:
    """The plans shipped beside a protocol file: `<stem>.sap-*.json`, by name."""
    return sorted(protocol_path.parent.glob(f"{protocol_path.stem}.sap-*.json"))


# ---- validation ------------------------------------------------------------------------------


def _keys(where: str, obj, allowed: dict[str, bool], errors: list[str]) -> bool:
    """Missing required keys and unknown keys of one object; False if it is not an object."""
    if not isinstance(obj, dict):
        errors.append(f"{where}: must be an object, not {type(obj).__name__}")
        return False
    for key, required in allowed.items():
        if required and key not in obj:
            errors.append(f"{where}: missing key '{key}'")
    for key in obj:
        if key not in allowed:
            errors.append(f"{where}: unknown key '{key}' (allowed: {', '.join(allowed)})")
    return True


def _known(value, known) -> bool:
    """`value` is one of `known` (a text; a list or an object from the file is not)."""
    return isinstance(value, str) and value in known


def _lookup(known: dict, value):
    return known[value] if _known(value, known) else None


def _text(where: str, obj: dict, key: str, errors: list[str]) -> None:
    if key in obj and (not isinstance(obj[key], str) or not obj[key].strip()):
        errors.append(f"{where}: '{key}' must be a non-empty text")


def _decimals(where: str, value, errors: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.append(f"{where}: decimals must be an object like {DEFAULT_DECIMALS}")
        return
    for key, d in value.items():
        if key not in DECIMALS_RANGE:
            errors.append(f"{where}: unknown decimals '{key}' (allowed: summary, percent, p)")
            continue
        low, high = DECIMALS_RANGE[key]
        if isinstance(d, bool) or not isinstance(d, int) or not low <= d <= high:
            errors.append(f"{where}: decimals '{key}' = {d!r} is not a whole number {low}..{high}")


def _rule_problems(
    where: str,
    rule,
    *,
    populations: set[str],
    visit_codes: set[str] | None,
    errors: list[str],
    refs: set[str],
) -> None:
    """Check one rule; collect the populations it refers to in `refs`."""
    if not isinstance(rule, dict) or len(rule) != 1:
        errors.append(
            f"{where}: a rule is an object with one key ({', '.join(RULE_ATOMS + RULE_GROUPS)}), "
            f"not {rule!r}"
        )
        return
    (key, value), *_ = rule.items()
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            errors.append(f"{where}: '{key}' needs a non-empty list of rules")
            return
        for i, sub in enumerate(value):
            _rule_problems(
                f"{where}.{key}[{i}]",
                sub,
                populations=populations,
                visit_codes=visit_codes,
                errors=errors,
                refs=refs,
            )
    elif key == "not":
        _rule_problems(
            f"{where}.not",
            value,
            populations=populations,
            visit_codes=visit_codes,
            errors=errors,
            refs=refs,
        )
    elif key in ("treated", "eligible"):
        if not isinstance(value, bool):
            errors.append(f"{where}: '{key}' must be true or false, not {value!r}")
    elif key == "visit":
        if not isinstance(value, str) or not value:
            errors.append(f"{where}: 'visit' must be a visit code, not {value!r}")
        elif visit_codes is not None and not _known(value, visit_codes):
            errors.append(
                f"{where}: visit code {value!r} is not in the protocol file "
                f"(its visits: {', '.join(sorted(visit_codes))})"
            )
    elif key == "end_of_study":
        statuses = EndOfStudy.Status.values
        if not isinstance(value, list) or not value:
            errors.append(f"{where}: 'end_of_study' needs a list of statuses")
        else:
            for status in value:
                if status not in statuses:
                    errors.append(
                        f"{where}: unknown end-of-study status {status!r} "
                        f"(known: {', '.join(statuses)})"
                    )
    elif key == "population":
        if not _known(value, populations):
            errors.append(f"{where}: unknown population {value!r}")
        else:
            refs.add(value)
    else:
        errors.append(
            f"{where}: unknown rule {key!r} (known: {', '.join(RULE_ATOMS + RULE_GROUPS)})"
        )


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of population references, if any."""
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if state.get(nxt) is None:
                found = visit(nxt, [*path, node])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node, [])
            if found:
                return found
    return None


def problems(data: dict, *, protocol: dict | None = None) -> tuple[list[str], list[str]]:
    """(errors, warnings) found in a plan. With `protocol` (the protocol file's data), the
    plan must name its registry id and its visit codes must be the protocol's."""
    errors: list[str] = []
    warnings: list[str] = []
    if not _keys("plan", data, TOP_KEYS, errors):
        return errors, warnings
    if data.get("format", FORMAT) != FORMAT:
        errors.append(f"plan: format {data.get('format')!r} is not {FORMAT}")
    for key in ("title", "version", "protocol", "description"):
        _text("plan", data, key, errors)
    if "plan_id" in data and not PLAN_ID.match(str(data["plan_id"])):
        errors.append(f"plan: plan_id {data['plan_id']!r} is not letters, digits, '.', '_', '-'")
    allow_auto = data.get("allow_data_driven_tests", False)
    if not isinstance(allow_auto, bool):
        errors.append("plan: 'allow_data_driven_tests' must be true or false")
        allow_auto = False
    visit_codes = None
    if protocol is not None:
        visit_codes = {v.get("code") for v in protocol.get("visits", [])}
        if data.get("protocol") not in (None, protocol.get("registry_id")):
            errors.append(
                f"plan: protocol {data.get('protocol')!r} is not the protocol file's "
                f"{protocol.get('registry_id')!r}"
            )
    defaults = data.get("defaults", {})
    if _keys("defaults", defaults, {"decimals": False}, errors):
        _decimals("defaults", defaults.get("decimals"), errors)

    # populations
    populations = data.get("populations", [])
    codes: set[str] = set()
    if not isinstance(populations, list) or not populations:
        errors.append("plan: 'populations' needs at least one population")
        populations = []
    for i, pop in enumerate(populations):
        where = f"populations[{i}]"
        if not _keys(where, pop, POPULATION_KEYS, errors):
            continue
        code = pop.get("code")
        if not isinstance(code, str) or not CODE.match(code):
            errors.append(f"{where}: code {code!r} is not lower-case letters, digits, '_'")
        elif code in codes:
            errors.append(f"{where}: population code {code!r} is used twice")
        else:
            codes.add(code)
        _text(where, pop, "label", errors)
    graph: dict[str, set[str]] = {}
    for i, pop in enumerate(populations):
        if isinstance(pop, dict) and "rule" in pop:
            refs: set[str] = set()
            where = f"population {pop.get('code', i)!r}"
            _rule_problems(
                f"{where} rule",
                pop["rule"],
                populations=codes,
                visit_codes=visit_codes,
                errors=errors,
                refs=refs,
            )
            if isinstance(pop.get("code"), str):
                graph[pop["code"]] = refs
    cycle = _cycle(graph)
    if cycle:
        errors.append(f"populations refer to each other in a circle: {' -> '.join(cycle)}")

    # responder
    responder = data.get("responder")
    if "responder" in data and _keys("responder", responder, RESPONDER_KEYS, errors):
        _text("responder", responder, "definition", errors)
        if "event" in responder and not _known(responder["event"], EVENTS):
            errors.append(
                f"responder: unknown event {responder['event']!r} (known: {', '.join(EVENTS)})"
            )
        if "classifiable" in responder:
            _rule_problems(
                "responder classifiable",
                responder["classifiable"],
                populations=codes,
                visit_codes=visit_codes,
                errors=errors,
                refs=set(),
            )
        labels = responder.get("labels")
        if "labels" in responder and _keys(
            "responder labels", labels, dict.fromkeys(GROUP_KEYS, True), errors
        ):
            for key in GROUP_KEYS:
                _text("responder labels", labels, key, errors)

    # tables
    tables = data.get("tables", [])
    if not isinstance(tables, list) or not tables:
        errors.append("plan: 'tables' needs at least one table")
        tables = []
    table_codes: set[str] = set()
    for i, table in enumerate(tables):
        where = f"tables[{i}]"
        code = table.get("code") if isinstance(table, dict) else None
        if isinstance(code, str) and CODE.match(code):
            where = f"table {code}"
        if not _keys(where, table, TABLE_KEYS, errors):
            continue
        if isinstance(code, str) and CODE.match(code):
            if code in table_codes:
                errors.append(f"{where}: table code {code!r} is used twice")
            table_codes.add(code)
        else:
            errors.append(f"{where}: code {code!r} is not lower-case letters, digits, '_'")
        _text(where, table, "title", errors)
        if "population" in table and not _known(table["population"], codes):
            errors.append(f"{where}: unknown population {table['population']!r}")
        _subgroup_problems(where, table.get("subgroup"), errors)
        rows = table.get("rows", [])
        if not isinstance(rows, list) or not rows:
            errors.append(f"{where}: 'rows' needs at least one row")
            continue
        row_codes: set[str] = set()
        for j, row in enumerate(rows):
            _row_problems(
                where,
                j,
                row,
                row_codes=row_codes,
                allow_auto=allow_auto,
                errors=errors,
                warnings=warnings,
            )
    return errors, warnings


def _subgroup_problems(where: str, subgroup, errors: list[str]) -> None:
    if subgroup is None:
        return
    if not _keys(f"{where} subgroup", subgroup, {"variable": True, "in": True}, errors):
        return
    variable = _lookup(VARIABLES, subgroup.get("variable"))
    if variable is None:
        errors.append(f"{where} subgroup: unknown variable {subgroup.get('variable')!r}")
        return
    if variable.kind != Kind.CATEGORICAL:
        errors.append(f"{where} subgroup: {variable.code} is not categorical")
        return
    levels = subgroup.get("in")
    if not isinstance(levels, list) or not levels:
        errors.append(f"{where} subgroup: 'in' needs a list of {variable.code} categories")
        return
    for level in levels:
        if level not in variable.levels:
            errors.append(
                f"{where} subgroup: {level!r} is not a category of {variable.code} "
                f"(known: {', '.join(variable.levels)})"
            )


def _row_problems(
    table_where: str,
    j: int,
    row,
    *,
    row_codes: set[str],
    allow_auto: bool,
    errors: list[str],
    warnings: list[str],
) -> None:
    where = f"{table_where} rows[{j}]"
    code = row.get("code") if isinstance(row, dict) else None
    if isinstance(code, str) and CODE.match(code):
        where = f"{table_where} row {code}"
    if not _keys(where, row, ROW_KEYS, errors):
        return
    if isinstance(code, str) and CODE.match(code):
        if code in row_codes:
            errors.append(f"{where}: row code {code!r} is used twice in the table")
        row_codes.add(code)
    else:
        errors.append(f"{where}: code {code!r} is not lower-case letters, digits, '_'")
    _text(where, row, "label", errors)
    _text(where, row, "note", errors)
    _decimals(where, row.get("decimals"), errors)
    variable = _lookup(VARIABLES, row.get("variable"))
    if variable is None:
        if "variable" in row:
            errors.append(
                f"{where}: unknown variable {row.get('variable')!r} (known: {', '.join(VARIABLES)})"
            )
        return
    summary = row.get("summary")
    if "summary" in row:
        if summary not in SUMMARIES:
            errors.append(f"{where}: unknown summary {summary!r} (known: {', '.join(SUMMARIES)})")
        elif summary not in SUMMARIES_OF[variable.kind]:
            errors.append(
                f"{where}: summary {summary!r} does not fit {variable.code} ({variable.kind}; "
                f"use {' or '.join(SUMMARIES_OF[variable.kind])})"
            )
    test = row.get("test")
    info = None
    if test is not None:
        info = _lookup(methods.TESTS, test)
        if info is None:
            errors.append(f"{where}: unknown test {test!r} (known: {', '.join(methods.TESTS)})")
        elif variable.kind not in TEST_SHAPE or TEST_SHAPE[variable.kind] != info.shape:
            fits = [t for t, i in methods.TESTS.items() if i.shape == TEST_SHAPE.get(variable.kind)]
            errors.append(
                f"{where}: test {test!r} does not fit {variable.code} ({variable.kind}"
                + (f"; use {', '.join(fits)})" if fits else "; no test)")
            )
        elif info.data_driven and not allow_auto:
            errors.append(
                f"{where}: test {test!r} chooses the test from the data; a plan uses it only "
                'with "allow_data_driven_tests": true'
            )
        elif info.data_driven:
            warnings.append(
                f"{where}: test {test!r} chooses the test from the data (a two-stage "
                "procedure); a confirmatory analysis declares the test"
            )
        if info and summary == "mean_sd" and test == "mann_whitney":
            warnings.append(
                f"{where}: a Mann-Whitney p does not test means; median_iqr fits it better "
                "than mean_sd"
            )
    elif variable.kind in (Kind.PAIRED,):
        errors.append(f"{where}: a within-group row needs a test (paired_t or wilcoxon)")
    # levels
    levels = row.get("levels")
    if levels is not None:
        if variable.kind != Kind.CATEGORICAL:
            errors.append(f"{where}: 'levels' only goes with a categorical variable")
        elif not isinstance(levels, list) or not levels:
            errors.append(f"{where}: 'levels' needs a list of {variable.code} categories")
        else:
            for level in levels:
                if level not in variable.levels:
                    errors.append(
                        f"{where}: {level!r} is not a category of {variable.code} "
                        f"(known: {', '.join(variable.levels)})"
                    )
            if len(set(map(str, levels))) != len(levels):
                errors.append(f"{where}: a category is listed twice in 'levels'")
    if info and info.two_by_two_only and variable.kind == Kind.CATEGORICAL:
        count = len(levels) if isinstance(levels, list) else len(variable.levels)
        if isinstance(levels, list) and count > 2:
            errors.append(
                f"{where}: test {test!r} is for a 2 x 2 table; this row has {count} categories"
            )
        elif count > 2:
            warnings.append(
                f"{where}: test {test!r} is for a 2 x 2 table; {variable.code} has {count} "
                "categories (n/a when more than 2 are present; declare 'levels')"
            )
    # % change
    change = row.get("percent_change")
    if variable.kind == Kind.PERCENT_CHANGE:
        if change is None:
            errors.append(
                f"{where}: a % change row needs 'percent_change' "
                '{"definition": ..., "denominator": ...}'
            )
        elif _keys(
            f"{where} percent_change", change, {"definition": True, "denominator": True}, errors
        ):
            definition = change.get("definition")
            if "definition" in change and definition not in methods.Definition.ALL:
                errors.append(
                    f"{where}: unknown % change definition {definition!r} "
                    f"(known: {', '.join(methods.Definition.ALL)})"
                )
            if "denominator" in change and change["denominator"] not in methods.DENOMINATORS:
                errors.append(
                    f"{where}: unknown % change denominator {change['denominator']!r} "
                    f"(known: {', '.join(methods.DENOMINATORS)})"
                )
            if definition == methods.Definition.CHANGE_OF_GROUP_MEANS and summary in (
                "mean_sd",
                "median_iqr",
            ):
                errors.append(
                    f"{where}: the change of the group means is one number per group; its "
                    "summary is group_value"
                )
            if definition == methods.Definition.MEAN_OF_INDIVIDUAL_CHANGES and (
                summary == "group_value"
            ):
                errors.append(
                    f"{where}: the mean of individual changes is summarised by mean_sd or "
                    "median_iqr, not group_value"
                )
    elif change is not None:
        errors.append(f"{where}: 'percent_change' only goes with a % change variable")


# ---- the loaded plan -------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientFacts:
    """What the populations and the responder definition are decided on, for one patient
    (built from the database by the results selector; plain data here)."""

    treated: bool = False
    eligible: bool = False
    visits: frozenset[str] = frozenset()  # visit codes with at least one live record
    end_of_study: str | None = None  # the end-of-study status, if recorded
    sperm_in_ejaculate: bool = False  # at any follow-up semen analysis


@dataclass(frozen=True)
class Rule:
    key: str
    value: object = None  # atoms: bool / visit code / statuses / population code
    rules: tuple[Rule, ...] = ()

    @classmethod
    def of(cls, data: dict) -> Rule:
        (key, value), *_ = data.items()
        if key in ("all", "any"):
            return cls(key, None, tuple(cls.of(r) for r in value))
        if key == "not":
            return cls(key, None, (cls.of(value),))
        if key == "end_of_study":
            return cls(key, tuple(value))
        return cls(key, value)

    def holds(self, facts: PatientFacts, plan: Plan) -> bool:
        match self.key:
            case "all":
                return all(r.holds(facts, plan) for r in self.rules)
            case "any":
                return any(r.holds(facts, plan) for r in self.rules)
            case "not":
                return not self.rules[0].holds(facts, plan)
            case "treated":
                return facts.treated is self.value
            case "eligible":
                return facts.eligible is self.value
            case "visit":
                return self.value in facts.visits
            case "end_of_study":
                return facts.end_of_study in self.value
            case "population":
                return plan.population(self.value).rule.holds(facts, plan)
        raise ValueError(f"unknown rule {self.key!r}")


@dataclass(frozen=True)
class Population:
    code: str
    label: str
    rule: Rule
    note: str = ""


@dataclass(frozen=True)
class ResponderDefinition:
    definition: str
    event: str
    classifiable: Rule
    labels: tuple[tuple[str, str], ...]  # (group, label): responder, non_responder, ...

    def label(self, group: str) -> str:
        return dict(self.labels)[group]


@dataclass(frozen=True)
class Decimals:
    summary: int
    percent: int
    p: int


@dataclass(frozen=True)
class PercentChangeSpec:
    definition: str
    denominator: str


@dataclass(frozen=True)
class RowSpec:
    code: str
    variable: Variable
    label: str
    summary: str
    test: str | None
    levels: tuple[str, ...]
    decimals: Decimals
    percent_change: PercentChangeSpec | None = None
    note: str = ""

    @property
    def test_info(self) -> methods.TestInfo | None:
        return methods.TESTS[self.test] if self.test else None


@dataclass(frozen=True)
class Subgroup:
    variable: Variable
    levels: tuple[str, ...]

    def includes(self, value: str | None) -> bool:
        return value in self.levels


@dataclass(frozen=True)
class TableSpec:
    code: str
    title: str
    population: str
    subgroup: Subgroup | None
    rows: tuple[RowSpec, ...]
    note: str = ""

    def row(self, code: str) -> RowSpec:
        return next(r for r in self.rows if r.code == code)


class Group:
    RESPONDER = "responder"
    NON_RESPONDER = "non_responder"
    NOT_CLASSIFIABLE = "not_classifiable"


@dataclass(frozen=True)
class Plan:
    plan_id: str
    title: str
    version: str
    protocol: str
    description: str
    allow_data_driven_tests: bool
    populations: tuple[Population, ...]
    responder: ResponderDefinition
    tables: tuple[TableSpec, ...]
    sha256: str

    def population(self, code: str) -> Population:
        return next(p for p in self.populations if p.code == code)

    def table(self, code: str) -> TableSpec:
        return next(t for t in self.tables if t.code == code)

    def includes(self, population: str, facts: PatientFacts) -> bool:
        return self.population(population).rule.holds(facts, self)

    def classify(self, facts: PatientFacts) -> str:
        """responder (the event seen), non_responder (not seen and classifiable: followed to
        the end), or not_classifiable (not seen so far, follow-up not complete): counted
        apart, never as a non-responder."""
        if facts.sperm_in_ejaculate:
            return Group.RESPONDER
        if self.responder.classifiable.holds(facts, self):
            return Group.NON_RESPONDER
        return Group.NOT_CLASSIFIABLE

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]


def load(data: dict, *, protocol: dict | None = None) -> Plan:
    """The typed plan; PlanError (with every error) when the plan is not valid."""
    errors, _ = problems(data, protocol=protocol)
    if errors:
        raise PlanError(errors)
    defaults = {**DEFAULT_DECIMALS, **((data.get("defaults") or {}).get("decimals") or {})}

    def row(r: dict) -> RowSpec:
        variable = VARIABLES[r["variable"]]
        change = r.get("percent_change")
        return RowSpec(
            code=r["code"],
            variable=variable,
            label=r.get("label", variable.label),
            summary=r["summary"],
            test=r["test"],
            levels=tuple(r.get("levels") or variable.levels),
            decimals=Decimals(**{**defaults, **(r.get("decimals") or {})}),
            percent_change=PercentChangeSpec(**change) if change else None,
            note=r.get("note", ""),
        )

    responder = data["responder"]
    return Plan(
        plan_id=data["plan_id"],
        title=data["title"],
        version=data["version"],
        protocol=data["protocol"],
        description=data.get("description", ""),
        allow_data_driven_tests=data.get("allow_data_driven_tests", False),
        populations=tuple(
            Population(p["code"], p["label"], Rule.of(p["rule"]), p.get("note", ""))
            for p in data["populations"]
        ),
        responder=ResponderDefinition(
            responder["definition"],
            responder["event"],
            Rule.of(responder["classifiable"]),
            tuple((key, responder["labels"][key]) for key in GROUP_KEYS),
        ),
        tables=tuple(
            TableSpec(
                code=t["code"],
                title=t["title"],
                population=t["population"],
                subgroup=Subgroup(VARIABLES[t["subgroup"]["variable"]], tuple(t["subgroup"]["in"]))
                if t.get("subgroup")
                else None,
                rows=tuple(row(r) for r in t["rows"]),
                note=t.get("note", ""),
            )
            for t in data["tables"]
        ),
        sha256=content_hash(data),
    )


def load_file(path: Path, *, protocol: dict | None = None) -> Plan:
    return load(read(path), protocol=protocol)
