"""reports.published: NCT02025270's Tables 1-3 as printed (../shared/reference/
PUBLISHED-TABLES.md) are data, every printed cell present and verbatim, with the notes on
the cells they concern; and a categorical row's printed p is recomputed from its printed
counts. No database."""

import copy

import pytest

from reports import methods, published
from reports.published import agrees, parse, recompute_counts_p

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def data():
    return published.read(published.path_for("NCT02025270"))


@pytest.fixture(scope="module")
def paper(data):
    return published.load(data)


def test_the_file_is_valid(data):
    assert published.problems(data) == ([], [])
    assert published.path_for("NCT02025270").name == "nct02025270.json"


# ---- every cell of Tables 1-3 ----------------------------------------------------------------

HORMONE_CELLS = 3 * (3 + 3 + 2 + 3)  # per hormone: before (F, S, P), after, within (F, S), %
EXPECTED_CELLS = {
    # patients 2; age 3; categorical rows: a count per category and group, and P
    "table1": 2 + 3 + (2 * 2 + 1) + (3 * 2 + 1) + (4 * 2 + 1) + (2 * 2 + 1) + (4 * 2 + 1)
    + HORMONE_CELLS,
    # no patients or biopsy row
    "table2": 3 + (2 * 2 + 1) + (3 * 2 + 1) + (2 * 2 + 1) + (4 * 2 + 1) + HORMONE_CELLS,
    # age and the hormones only
    "table3": 3 + HORMONE_CELLS,
}  # fmt: skip


def test_every_printed_cell_of_tables_1_to_3_is_present(paper):
    assert EXPECTED_CELLS == {"table1": 73, "table2": 62, "table3": 36}
    for table, expected in EXPECTED_CELLS.items():
        assert len(paper.cells_of(table)) == expected, table
    assert len(paper.cells) == 171
    for table in EXPECTED_CELLS:
        rows = {c.row for c in paper.cells_of(table)}
        for hormone in ("fsh", "lh", "testosterone"):
            for suffix, groups in (
                ("before", {"failed", "success", "p"}),
                ("after", {"failed", "success", "p"}),
                ("within", {"failed", "success"}),
                ("percent_change", {"failed", "success", "p"}),
            ):
                row = f"{hormone}_{suffix}"
                assert row in rows
                assert {c.group for c in paper.cells_of(table, row)} == groups


# Spot checks: (table, row, group, level) -> printed text, verbatim (typos included).
VERBATIM = {
    ("table1", "patients", "failed", None): "69 (79.3%)",
    ("table1", "patients", "success", None): "1 (20.7%)",
    ("table1", "age", "failed", None): "36.9 ± 7.35",
    ("table1", "age", "p", None): "0.269",
    ("table1", "examination", "failed", "varicocele"): "7",
    ("table1", "biopsy", "success", "MA_SECONDARY"): "4",
    ("table1", "azf", "p", None): "0.779",
    ("table1", "fsh_within", "failed", None): "P = 0.016",
    ("table1", "fsh_after", "p", None): "< 0.001",
    ("table1", "lh_after", "success", None): "5.143 ± 1.014",
    ("table1", "testosterone_percent_change", "failed", None): "32.76",
    ("table1", "lh_percent_change", "p", None): "0.01",
    ("table2", "fsh_before", "failed", None): "19.67 ± 8.5",
    ("table2", "fsh_after", "failed", None): "15.2 ± 13.3",
    ("table2", "fsh_after", "p", None): "< 0.007",
    ("table2", "karyotype", "p", None): "< 0.001",
    ("table2", "azf", "failed", "AZFa"): "0",
    ("table2", "testosterone_within", "success", None): "P = 0.001",
    ("table3", "age", "p", None): "0.3946",
    ("table3", "lh_within", "success", None): "P < 0.073",
    ("table3", "fsh_percent_change", "success", None): "48",
    ("table3", "testosterone_before", "success", None): "3.51 ± 0.272",
}


@pytest.mark.parametrize("key", VERBATIM)
def test_printed_values_are_kept_verbatim(paper, key):
    table, row, group, level = key
    assert paper.cell(table, row, group, level).printed == VERBATIM[key]


def test_the_printed_counts_add_up_to_the_group_sizes(paper):
    for row in ("testicular_size", "examination", "biopsy", "karyotype", "azf"):
        _, counts = paper.counts("table1", row)
        assert [sum(c[0] for c in counts), sum(c[1] for c in counts)] == [69, 18], row
    for row in ("testicular_size", "examination", "karyotype", "azf"):
        _, counts = paper.counts("table2", row)
        assert [sum(c[0] for c in counts), sum(c[1] for c in counts)] == [55, 11], row


# ---- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "printed", "values"),
    [
        ("p", "< 0.001", {"p_bound": 0.001}),
        ("p", "P < 0.001", {"p_bound": 0.001}),
        ("p", "P = 0.016", {"p": 0.016}),
        ("p", "0.3946", {"p": 0.3946}),
        ("mean_sd", "36.9 ± 7.35", {"mean": 36.9, "sd": 7.35}),
        ("n_percent", "69 (79.3%)", {"n": 69, "percent": 79.3}),
        ("n_percent", "1 (20.7%)", {"n": 1, "percent": 20.7}),
        ("n", "0", {"n": 0}),
        ("percent_change", "48", {"percent_change": 48.0}),
    ],
)
def test_parse(kind, printed, values):
    assert parse(kind, printed) == values


@pytest.mark.parametrize(
    ("kind", "printed"),
    [("p", "n.s."), ("mean_sd", "36.9 +/- 7.35"), ("n_percent", "69"), ("n", "1.5"), ("x", "1")],
)
def test_parse_refuses_what_does_not_read_as_its_kind(kind, printed):
    with pytest.raises(ValueError):
        parse(kind, printed)


def test_decimals_of_a_printed_number():
    assert [published.decimals_of(t) for t in ("0.070", "48", "0.3946", "5.143")] == [3, 0, 4, 3]


# ---- notes -----------------------------------------------------------------------------------


def _notes(cell):
    return {n.code for n in cell.notes}


def test_the_typo_is_kept_and_explained(paper):
    cell = paper.cell("table1", "patients", "success")
    assert cell.value("n") == 1
    assert "patients_typo" in _notes(cell)
    assert "18" in cell.notes[0].text


def test_table_2s_inconsistent_p_values_carry_the_note(paper):
    flagged = {c.row for c in paper.cells_of("table2") if "table2_p_inconsistent" in _notes(c)}
    assert flagged == {"karyotype", "azf", "age"}
    assert all(
        c.group == "p" for c in paper.cells_of("table2") if "table2_p_inconsistent" in _notes(c)
    )


def test_table_1s_non_responder_hormone_means_disagree_with_tables_2_and_3(paper):
    flagged = {
        (c.row, c.group)
        for c in paper.cells_of("table1")
        if "table1_hormones_disagree" in _notes(c)
    }
    assert flagged == {
        (f"{h}_{when}", "failed")
        for h in ("fsh", "lh", "testosterone")
        for when in ("before", "after")
    }
    # The note's claim: FSH before, 24.70 printed, 19.6 from Tables 2 (55) and 3 (14).
    weighted = (
        55 * paper.cell("table2", "fsh_before", "failed").value("mean")
        + 14 * paper.cell("table3", "fsh_before", "failed").value("mean")
    ) / 69
    assert f"{weighted:.1f}" == "19.6"
    assert paper.cell("table1", "fsh_before", "failed").value("mean") == 24.70


def test_the_percent_change_notes_and_their_claim(paper):
    for cell in paper.cells:
        if cell.row.endswith("_percent_change"):
            assert "percent_change_group_means" in _notes(cell)
    testosterone = {
        (c.table, n.code)
        for c in paper.cells
        if c.row == "testosterone_percent_change"
        for n in c.notes
        if "denominator" in n.code
    }
    assert testosterone == {
        ("table1", "testosterone_after_denominator"),
        ("table2", "testosterone_after_denominator"),
        ("table3", "testosterone_before_denominator"),
    }
    # The change of the group means with these denominators gives the printed % change,
    # except for four cells the data will flag (Table 2 LH, Table 3 LH and testosterone of
    # the responders: the printed value is not the printed means' change).
    follows, differs = set(), set()
    for table in ("table1", "table2", "table3"):
        for hormone, direction in (("fsh", "fall"), ("lh", "fall"), ("testosterone", "rise")):
            denominator = "after" if hormone == "testosterone" and table != "table3" else "before"
            for group in ("failed", "success"):
                before = paper.cell(table, f"{hormone}_before", group).value("mean")
                after = paper.cell(table, f"{hormone}_after", group).value("mean")
                change = methods.percent_change(
                    [before], [after], definition="change_of_group_means",
                    denominator=denominator, direction=direction,
                )  # fmt: skip
                printed = paper.cell(table, f"{hormone}_percent_change", group)
                target = follows if agrees(printed, "percent_change", change.value) else differs
                target.add((table, hormone, group))
    assert differs == {
        ("table2", "lh", "failed"),
        ("table2", "lh", "success"),
        ("table3", "lh", "success"),
        ("table3", "testosterone", "success"),
    }
    assert len(follows) == 14


# ---- recomputing a categorical p from the printed counts -------------------------------------


def test_table_2_karyotype_cannot_follow_from_its_printed_counts(paper):
    r = recompute_counts_p(paper, table="table2", row="karyotype")
    assert r.explanation == (
        "p < 0.001 printed; chi-square on the printed counts gives 0.104, Fisher 0.188"
    )
    assert not r.chi_square_agrees and not r.fisher_agrees and not r.follows


@pytest.mark.parametrize(
    ("row", "printed"),
    [
        ("testicular_size", "0.227"),
        ("examination", "0.231"),
        ("biopsy", "0.084"),
        ("karyotype", "0.070"),
        ("azf", "0.779"),
    ],
)
def test_table_1s_five_p_values_are_chi_square_on_the_printed_counts(paper, row, printed):
    r = recompute_counts_p(paper, table="table1", row=row)
    assert r.printed.printed == printed
    assert r.chi_square.label(3) == printed
    assert r.chi_square_agrees and r.follows
    assert not r.fisher_agrees  # Fisher's exact test gives other values
    assert r.explanation.startswith(f"p = {printed} printed; chi-square on the printed counts")


def test_table_2_azf_gives_0_73_not_0_214(paper):
    r = recompute_counts_p(paper, table="table2", row="azf")
    assert f"{r.chi_square.p:.2f}" == "0.73"
    assert r.fisher.test == "fisher_freeman_halton"
    assert not r.follows
    assert r.explanation.startswith(
        "p = 0.214 printed; chi-square on the printed counts gives 0.730"
    )


def test_agrees_reads_the_printed_precision_and_bounds(paper):
    age = paper.cell("table3", "age", "p")  # "0.3946"
    assert agrees(age, "p", 0.39464)
    assert not agrees(age, "p", 0.3951)
    bound = paper.cell("table1", "fsh_after", "p")  # "< 0.001"
    assert agrees(bound, "p", 0.0004)
    assert not agrees(bound, "p", 0.0012)
    assert not agrees(bound, "p", None)
    mean = paper.cell("table1", "age", "failed")  # "36.9 ± 7.35"
    assert agrees(mean, "mean", 36.94) and agrees(mean, "sd", 7.349)
    assert not agrees(mean, "sd", 7.36)


# ---- a broken file ---------------------------------------------------------------------------


def _first(d, row, group="failed"):
    return next(c for c in d["cells"] if c["row"] == row and c["group"] == group)


BROKEN = {
    "values not what is printed": (
        lambda d: _first(d, "age").__setitem__("values", {"mean": 36.9, "sd": 7.3}),
        "cell table1/age/failed: values {'mean': 36.9, 'sd': 7.3} are not what '36.9 ± 7.35' reads",
    ),
    "unparseable": (
        lambda d: _first(d, "age").__setitem__("printed", "36.9 (7.35)"),
        "cell table1/age/failed: '36.9 (7.35)' does not read as mean_sd",
    ),
    "unknown group": (
        lambda d: _first(d, "age").__setitem__("group", "responders"),
        "unknown group 'responders'",
    ),
    "unknown row": (
        lambda d: _first(d, "age").__setitem__("row", "bmi"),
        "cell table1/bmi/failed: unknown row 'bmi'",
    ),
    "unknown table": (
        lambda d: _first(d, "age").__setitem__("table", "table9"),
        "cell table9/age/failed: unknown table 'table9'",
    ),
    "unknown category": (
        lambda d: next(c for c in d["cells"] if c.get("level") == "47,XXY").__setitem__(
            "level", "47,XYY"
        ),
        "'47,XYY' is not a category of karyotype",
    ),
    "a cell twice": (
        lambda d: d["cells"].append(copy.deepcopy(_first(d, "age"))),
        "cell table1/age/failed: the cell is listed twice",
    ),
    "unknown note": (
        lambda d: _first(d, "age").__setitem__("notes", ["nope"]),
        "cell table1/age/failed: unknown note 'nope'",
    ),
    "missing key": (
        lambda d: _first(d, "age").pop("printed"),
        "cell table1/age/failed: missing key 'printed'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_file_is_refused_with_its_reason(data, case):
    broken = copy.deepcopy(data)
    change, expected = BROKEN[case]
    change(broken)
    errors, _ = published.problems(broken)
    assert any(expected in e for e in errors), errors
    with pytest.raises(published.PublishedError):
        published.load(broken)


def test_every_printed_cell_has_its_row_in_both_plans(paper):
    # the review page pairs each printed cell with the plan's row of the same codes
    from django.conf import settings

    from reports import plan

    for name in ("as-published", "recommended"):
        loaded = plan.load_file(settings.PROTOCOL_FILE.parent / f"nct02025270.sap-{name}.json")
        rows = {(t.code, r.code) for t in loaded.tables for r in t.rows}
        assert {(c.table, c.row) for c in paper.cells} <= rows, name
        for cell in paper.cells:
            if cell.level is not None:
                assert cell.level in loaded.table(cell.table).row(cell.row).levels
