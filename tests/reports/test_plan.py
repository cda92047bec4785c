"""reports.plan: the statistical analysis plan file. Both shipped plans are valid and say what
they claim (the paper's methods; the recommended ones); every broken plan is refused with its
reason; the hash is stable and follows the content; populations and the responder definition
decide as written; the start-up check reports a broken plan. No database."""

import copy
import json
import shutil

import pytest
from django.conf import settings as django_settings
from django.core.checks import registry

from reports import checks, methods, plan
from reports.plan import Group, PatientFacts
from trial import protocol_file

PROTOCOL = django_settings.PROTOCOL_FILE
AS_PUBLISHED = PROTOCOL.parent / "nct02025270.sap-as-published.json"
RECOMMENDED = PROTOCOL.parent / "nct02025270.sap-recommended.json"


@pytest.fixture(scope="module")
def protocol_data():
    return protocol_file.read(PROTOCOL)


@pytest.fixture
def published_data():
    return plan.read(AS_PUBLISHED)


def rows_of(p: plan.Plan):
    return [(t.code, r) for t in p.tables for r in t.rows]


# ---- the shipped plans -----------------------------------------------------------------------


def test_both_plans_ship_beside_the_protocol_file():
    assert plan.plan_files(PROTOCOL) == [AS_PUBLISHED, RECOMMENDED]


@pytest.mark.parametrize("path", [AS_PUBLISHED, RECOMMENDED])
def test_a_shipped_plan_is_valid_without_warnings(path, protocol_data):
    assert plan.problems(plan.read(path), protocol=protocol_data) == ([], [])
    loaded = plan.load_file(path, protocol=protocol_data)
    assert loaded.protocol == protocol_data["registry_id"]
    assert [t.code for t in loaded.tables] == ["table1", "table2", "table3"]
    assert [p.code for p in loaded.populations] == ["all_treated", "completers", "per_protocol"]
    assert not loaded.allow_data_driven_tests
    assert not any(r.test_info and r.test_info.data_driven for _, r in rows_of(loaded))


def test_the_subgroups_are_scos_and_arrest():
    loaded = plan.load_file(AS_PUBLISHED)
    assert loaded.table("table1").subgroup is None
    assert loaded.table("table2").subgroup.levels == ("SCOS",)
    assert loaded.table("table3").subgroup.levels == ("MA_PRIMARY", "MA_SECONDARY", "MA_SPERMATID")
    assert loaded.table("table3").subgroup.includes("MA_SPERMATID")
    assert not loaded.table("table3").subgroup.includes("SCOS")


def test_the_as_published_plan_uses_the_papers_methods():
    loaded = plan.load_file(AS_PUBLISHED)
    by_kind = {}
    for _, row in rows_of(loaded):
        by_kind.setdefault(row.variable.kind, set()).add((row.summary, row.test))
    assert by_kind[plan.Kind.CATEGORICAL] == {("n_percent", "chi_square")}
    assert by_kind[plan.Kind.CONTINUOUS] == {("mean_sd", "student_t")}
    assert by_kind[plan.Kind.PAIRED] == {("none", "paired_t")}
    assert by_kind[plan.Kind.PERCENT_CHANGE] == {("group_value", "student_t")}
    denominators = {
        (table, row.variable.hormone): row.percent_change.denominator
        for table, row in rows_of(loaded)
        if row.percent_change
    }
    assert {d for (_, h), d in denominators.items() if h in ("fsh", "lh")} == {"before"}
    assert denominators[("table1", "testosterone")] == "after"
    assert denominators[("table2", "testosterone")] == "after"
    assert denominators[("table3", "testosterone")] == "before"
    assert {row.percent_change.definition for _, row in rows_of(loaded) if row.percent_change} == {
        "change_of_group_means"
    }
    # the rows of the paper's tables, in its order
    assert [r.code for r in loaded.table("table1").rows][:7] == [
        "patients", "age", "testicular_size", "examination", "biopsy", "karyotype", "azf",
    ]  # fmt: skip
    assert loaded.table("table1").row("karyotype").levels == ("46,XY", "47,XXY")
    assert [r.code for r in loaded.table("table3").rows][0] == "age"
    assert len(loaded.table("table3").rows) == 13  # age + 3 hormones x 4


def test_the_recommended_plan_declares_exact_tests_welch_medians_and_wilcoxon():
    loaded = plan.load_file(RECOMMENDED)
    for _, row in rows_of(loaded):
        kind = row.variable.kind
        if kind == plan.Kind.CATEGORICAL:
            expected = "fisher" if len(row.levels) == 2 else "fisher_freeman_halton"
            assert row.test == expected, row.code
        elif row.code == "age":
            assert (row.summary, row.test) == ("mean_sd", "welch_t")
        elif kind in (plan.Kind.CONTINUOUS, plan.Kind.PERCENT_CHANGE):
            assert (row.summary, row.test) == ("median_iqr", "mann_whitney"), row.code
        elif kind == plan.Kind.PAIRED:
            assert row.test == "wilcoxon"
        if row.percent_change:
            assert row.percent_change == plan.PercentChangeSpec(
                "mean_of_individual_changes", "before"
            )
    assert not any(r.test and r.test.startswith("chi_square") for _, r in rows_of(loaded))


def test_decimals_come_from_the_defaults_unless_a_row_says_otherwise(published_data):
    row = published_data["tables"][0]["rows"][1]
    row["decimals"] = {"p": 4}
    loaded = plan.load(published_data)
    assert loaded.table("table1").row("age").decimals == plan.Decimals(summary=2, percent=1, p=4)
    assert loaded.table("table1").row("testicular_size").decimals == plan.Decimals(2, 1, 3)


# ---- the hash --------------------------------------------------------------------------------


def test_the_hash_is_the_sha256_of_the_canonical_json(published_data):
    import hashlib

    loaded = plan.load(published_data)
    canonical = json.dumps(
        published_data, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert loaded.sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    assert loaded.short_hash == loaded.sha256[:12]


def test_the_hash_is_stable_across_formatting_and_key_order(published_data, tmp_path):
    path = tmp_path / "plan.json"
    reordered = dict(reversed(list(published_data.items())))
    path.write_text(json.dumps(reordered, indent=7))
    assert plan.load_file(path).sha256 == plan.load_file(AS_PUBLISHED).sha256
    assert plan.content_hash(plan.read(AS_PUBLISHED)) == plan.content_hash(published_data)


def test_the_hash_changes_when_a_row_changes(published_data):
    before = plan.content_hash(published_data)
    changed = copy.deepcopy(published_data)
    changed["tables"][0]["rows"][1]["test"] = "welch_t"
    assert plan.content_hash(changed) != before
    changed = copy.deepcopy(published_data)
    changed["tables"][2]["rows"][-1]["percent_change"]["denominator"] = "after"
    assert plan.content_hash(changed) != before
    assert plan.load_file(AS_PUBLISHED).sha256 != plan.load_file(RECOMMENDED).sha256


# ---- broken plans ----------------------------------------------------------------------------


def _row(data, table, code):
    return next(r for r in data["tables"][table]["rows"] if r["code"] == code)


def _set(table, code, key, value):
    def change(data):
        _row(data, table, code)[key] = value

    return change


def _delete(path):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def _completers_any(data):
    return data["populations"][1]["rule"]["all"][1]["any"]


def _classifiable_any(data):
    return data["responder"]["classifiable"]["any"]


def _fsh_change(data):
    return _row(data, 0, "fsh_percent_change")["percent_change"]


def _apply(fn):
    def change(data):
        fn(data)

    return change


BROKEN = {
    "unknown test": (
        _set(0, "age", "test", "t_test"),
        "table table1 row age: unknown test 't_test'",
    ),
    "unknown summary": (
        _set(0, "age", "summary", "mean_se"),
        "table table1 row age: unknown summary 'mean_se'",
    ),
    "unknown variable": (
        _set(0, "age", "variable", "bmi"),
        "table table1 row age: unknown variable 'bmi'",
    ),
    "chi-square on a continuous variable": (
        _set(0, "age", "test", "chi_square"),
        "table table1 row age: test 'chi_square' does not fit age (continuous; use student_t",
    ),
    "a t-test on categories": (
        _set(0, "karyotype", "test", "student_t"),
        "row karyotype: test 'student_t' does not fit karyotype (categorical; use chi_square",
    ),
    "a paired test between groups": (
        _set(0, "fsh_before", "test", "wilcoxon"),
        "row fsh_before: test 'wilcoxon' does not fit fsh_before",
    ),
    "a between-group test within a group": (
        _set(0, "fsh_within", "test", "mann_whitney"),
        "row fsh_within: test 'mann_whitney' does not fit fsh_within (paired; use paired_t",
    ),
    "a test on the group sizes": (
        _set(0, "patients", "test", "chi_square"),
        "row patients: test 'chi_square' does not fit patients (group; no test)",
    ),
    "a within-group row without a test": (
        _set(0, "lh_within", "test", None),
        "row lh_within: a within-group row needs a test",
    ),
    "a summary that does not fit": (
        _set(0, "azf", "summary", "mean_sd"),
        "row azf: summary 'mean_sd' does not fit azf (categorical; use n_percent)",
    ),
    "Fisher 2 x 2 on three declared categories": (
        _set(0, "azf", "test", "fisher"),
        "row azf: test 'fisher' is for a 2 x 2 table; this row has 4 categories",
    ),
    "an unknown category": (
        _set(0, "karyotype", "levels", ["46,XY", "47,XYY"]),
        "row karyotype: '47,XYY' is not a category of karyotype",
    ),
    "levels on a continuous row": (
        _set(0, "age", "levels", ["old"]),
        "row age: 'levels' only goes with a categorical variable",
    ),
    "unknown population": (
        _apply(lambda d: d["tables"][1].__setitem__("population", "itt")),
        "table table2: unknown population 'itt'",
    ),
    "unknown subgroup category": (
        _apply(lambda d: d["tables"][1]["subgroup"].__setitem__("in", ["SCO"])),
        "table table2 subgroup: 'SCO' is not a category of biopsy",
    ),
    "a subgroup on a continuous variable": (
        _apply(lambda d: d["tables"][1].__setitem__("subgroup", {"variable": "age", "in": [1]})),
        "table table2 subgroup: age is not categorical",
    ),
    "missing title": (_delete(["title"]), "plan: missing key 'title'"),
    "missing tables": (_delete(["tables"]), "plan: missing key 'tables'"),
    "missing row test": (
        _delete(["tables", 0, "rows", 1, "test"]),
        "table table1 row age: missing key 'test'",
    ),
    "missing responder rule": (
        _delete(["responder", "classifiable"]),
        "responder: missing key 'classifiable'",
    ),
    "a typo in a key": (
        _apply(lambda d: d["tables"][0]["rows"][1].__setitem__("tset", "welch_t")),
        "table table1 row age: unknown key 'tset'",
    ),
    "p decimals 0": (
        _set(0, "age", "decimals", {"p": 0}),
        "table table1 row age: decimals 'p' = 0 is not a whole number 1..6",
    ),
    "summary decimals 9": (
        _set(0, "age", "decimals", {"summary": 9}),
        "decimals 'summary' = 9 is not a whole number 0..6",
    ),
    "decimals as text": (
        _apply(lambda d: d["defaults"]["decimals"].__setitem__("p", "3")),
        "defaults: decimals 'p' = '3' is not a whole number 1..6",
    ),
    "unknown decimals": (
        _set(0, "age", "decimals", {"mean": 2}),
        "row age: unknown decimals 'mean'",
    ),
    "duplicate row code": (
        _apply(lambda d: d["tables"][0]["rows"].append(dict(_row(d, 0, "age")))),
        "table table1 row age: row code 'age' is used twice in the table",
    ),
    "duplicate table code": (
        _apply(lambda d: d["tables"][1].__setitem__("code", "table1")),
        "table code 'table1' is used twice",
    ),
    "duplicate population code": (
        _apply(lambda d: d["populations"][1].__setitem__("code", "all_treated")),
        "populations[1]: population code 'all_treated' is used twice",
    ),
    "a visit the protocol lacks": (
        _apply(lambda d: _completers_any(d)[0].__setitem__("visit", "M24")),
        "population 'completers' rule.all[1].any[0]: visit code 'M24' is not in the protocol file",
    ),
    "a responder rule on a visit the protocol lacks": (
        _apply(lambda d: _classifiable_any(d)[0].__setitem__("visit", "M18")),
        "responder classifiable.any[0]: visit code 'M18' is not in the protocol file",
    ),
    "an unknown end-of-study status": (
        _apply(lambda d: _classifiable_any(d)[1].__setitem__("end_of_study", ["DONE"])),
        "unknown end-of-study status 'DONE'",
    ),
    "an unknown rule": (
        _apply(lambda d: d["populations"][0].__setitem__("rule", {"injected": True})),
        "population 'all_treated' rule: unknown rule 'injected'",
    ),
    "a rule with two keys": (
        _apply(lambda d: d["populations"][0].__setitem__("rule", {"treated": 1, "eligible": 1})),
        "population 'all_treated' rule: a rule is an object with one key",
    ),
    "a reference to an unknown population": (
        _apply(lambda d: d["populations"][2]["rule"]["all"][0].__setitem__("population", "itt")),
        "population 'per_protocol' rule.all[0]: unknown population 'itt'",
    ),
    "populations in a circle": (
        _apply(lambda d: d["populations"][0].__setitem__("rule", {"population": "per_protocol"})),
        "populations refer to each other in a circle: all_treated -> per_protocol -> completers",
    ),
    "an unknown responder event": (
        _apply(lambda d: d["responder"].__setitem__("event", "pregnancy")),
        "responder: unknown event 'pregnancy'",
    ),
    "a missing group label": (
        _delete(["responder", "labels", "not_classifiable"]),
        "responder labels: missing key 'not_classifiable'",
    ),
    "another protocol": (
        _apply(lambda d: d.__setitem__("protocol", "NCT00000000")),
        "plan: protocol 'NCT00000000' is not the protocol file's 'NCT02025270'",
    ),
    "a data-driven test not allowed": (
        _set(0, "age", "test", "auto_two_groups"),
        "row age: test 'auto_two_groups' chooses the test from the data; a plan uses it only "
        'with "allow_data_driven_tests": true',
    ),
    "a % change row without its definition": (
        _apply(lambda d: _row(d, 0, "fsh_percent_change").pop("percent_change")),
        "row fsh_percent_change: a % change row needs 'percent_change'",
    ),
    "an unknown % change definition": (
        _apply(lambda d: _fsh_change(d).__setitem__("definition", "median_change")),
        "row fsh_percent_change: unknown % change definition 'median_change'",
    ),
    "an unknown % change denominator": (
        _apply(lambda d: _fsh_change(d).__setitem__("denominator", "baseline")),
        "row fsh_percent_change: unknown % change denominator 'baseline'",
    ),
    "a mean ± SD of one group value": (
        _set(0, "fsh_percent_change", "summary", "mean_sd"),
        "row fsh_percent_change: the change of the group means is one number per group",
    ),
    "a % change on another row": (
        _set(0, "age", "percent_change", _fsh_change(plan.read(AS_PUBLISHED))),
        "row age: 'percent_change' only goes with a % change variable",
    ),
    "a bad plan id": (
        _apply(lambda d: d.__setitem__("plan_id", "my plan!")),
        "plan: plan_id 'my plan!' is not letters, digits",
    ),
    "an empty title": (
        _apply(lambda d: d.__setitem__("title", " ")),
        "plan: 'title' must be a non-empty text",
    ),
    "another format": (
        _apply(lambda d: d.__setitem__("format", 2)),
        "plan: format 2 is not 1",
    ),
    "no tables": (
        _apply(lambda d: d.__setitem__("tables", [])),
        "plan: 'tables' needs at least one table",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_plan_is_refused_with_its_reason(case, published_data, protocol_data):
    change, expected = BROKEN[case]
    change(published_data)
    errors, _ = plan.problems(published_data, protocol=protocol_data)
    assert any(expected in e for e in errors), errors
    with pytest.raises(plan.PlanError) as refused:
        plan.load(published_data, protocol=protocol_data)
    assert refused.value.errors == errors


def test_a_plan_that_is_not_an_object_is_refused():
    assert plan.problems([1, 2]) == (["plan: must be an object, not list"], [])


def test_without_the_protocol_file_visit_codes_are_not_checked(published_data):
    published_data["populations"][1]["rule"]["all"][1]["any"][0]["visit"] = "M24"
    assert plan.problems(published_data) == ([], [])


def test_a_data_driven_test_is_accepted_only_when_the_plan_allows_it_and_is_warned(
    published_data,
):
    _row(published_data, 0, "age")["test"] = "auto_two_groups"
    published_data["allow_data_driven_tests"] = True
    errors, warnings = plan.problems(published_data)
    assert errors == []
    assert warnings == [
        "table table1 row age: test 'auto_two_groups' chooses the test from the data (a "
        "two-stage procedure); a confirmatory analysis declares the test"
    ]


def test_mann_whitney_beside_a_mean_is_a_warning(published_data):
    _row(published_data, 0, "age")["test"] = "mann_whitney"
    errors, warnings = plan.problems(published_data)
    assert errors == []
    assert warnings == [
        "table table1 row age: a Mann-Whitney p does not test means; median_iqr fits it "
        "better than mean_sd"
    ]


def test_fisher_2x2_on_a_variable_with_more_categories_is_a_warning_without_levels(
    published_data,
):
    row = _row(published_data, 0, "karyotype")
    row["test"] = "fisher"
    assert plan.problems(published_data) == ([], [])  # 2 declared levels
    del row["levels"]
    errors, warnings = plan.problems(published_data)
    assert errors == []
    assert (
        "row karyotype: test 'fisher' is for a 2 x 2 table; karyotype has 5 categories"
        in (warnings[0])
    )


def test_every_named_test_fits_some_variable():
    for info in methods.TESTS.values():
        assert info.shape in plan.TEST_SHAPE.values(), info.code


def test_the_examination_categories_are_the_results_pages():
    from reports.selectors import ExamCategory

    assert tuple(code for code, _ in ExamCategory.CHOICES) == plan.EXAMINATION_LEVELS


# ---- populations and the responder definition ------------------------------------------------


def facts(**kwargs):
    kwargs["visits"] = frozenset(kwargs.get("visits", ()))
    return PatientFacts(**kwargs)


@pytest.fixture(scope="module")
def loaded():
    return plan.load_file(AS_PUBLISHED)


def test_all_treated_is_every_treated_patient(loaded):
    assert loaded.includes("all_treated", facts(treated=True))
    assert not loaded.includes("all_treated", facts(treated=False, visits={"M12"}))


@pytest.mark.parametrize(
    ("patient", "completer"),
    [
        (facts(treated=True, visits={"SCR", "D0", "M4", "M12"}), True),
        (facts(treated=True, visits={"SCR", "D0", "M4"}, end_of_study="COMPLETED"), True),
        (facts(treated=True, visits={"SCR", "D0", "M4", "M6"}), False),
        (facts(treated=True, visits={"M4"}, end_of_study="WITHDRAWAL BY SUBJECT"), False),
        (facts(treated=False, visits={"M12"}), False),
    ],
)
def test_completers_are_followed_to_m12_or_a_completed_end_of_study(loaded, patient, completer):
    assert loaded.includes("completers", patient) is completer


def test_per_protocol_also_needs_eligibility(loaded):
    assert loaded.includes("per_protocol", facts(treated=True, eligible=True, visits={"M12"}))
    assert not loaded.includes("per_protocol", facts(treated=True, visits={"M12"}))
    assert not loaded.includes("per_protocol", facts(treated=True, eligible=True, visits={"M8"}))


@pytest.mark.parametrize(
    ("patient", "group"),
    [
        # sperm at any follow-up analysis: a responder, however short the follow-up
        (facts(treated=True, visits={"M4"}, sperm_in_ejaculate=True), Group.RESPONDER),
        # no sperm and followed to the end: a non-responder
        (facts(treated=True, visits={"M4", "M6", "M8", "M10", "M12"}), Group.NON_RESPONDER),
        (facts(treated=True, visits={"M4"}, end_of_study="COMPLETED"), Group.NON_RESPONDER),
        # one analysis without sperm "so far": not yet classifiable, not a non-responder
        (facts(treated=True, visits={"M4"}), Group.NOT_CLASSIFIABLE),
        (facts(treated=True, visits={"M4"}, end_of_study="LOST TO FOLLOW-UP"),
         Group.NOT_CLASSIFIABLE),
    ],
)  # fmt: skip
def test_the_responder_definition(loaded, patient, group):
    assert loaded.classify(patient) == group


def test_the_group_labels_are_the_papers(loaded):
    assert loaded.responder.label(Group.RESPONDER) == "Success"
    assert loaded.responder.label(Group.NON_RESPONDER) == "Failed"
    assert loaded.responder.label(Group.NOT_CLASSIFIABLE) == "Not yet classifiable"


def test_a_rule_can_negate(published_data):
    published_data["populations"][2]["rule"] = {"not": {"population": "completers"}}
    loaded = plan.load(published_data)
    assert loaded.includes("per_protocol", facts(treated=True))
    assert not loaded.includes("per_protocol", facts(treated=True, visits={"M12"}))


def test_a_plan_is_frozen_and_hashable(loaded):
    with pytest.raises(AttributeError):
        loaded.version = "2.0"
    assert hash(loaded) == hash(plan.load_file(AS_PUBLISHED))


# ---- the start-up check ----------------------------------------------------------------------


def test_the_check_is_registered_and_the_shipped_plans_pass():
    assert checks.analysis_plans_are_valid in registry.registry.get_checks()
    assert checks.analysis_plans_are_valid(None) == []


@pytest.fixture
def plans_dir(tmp_path, settings):
    protocol = tmp_path / "nct02025270.json"
    shutil.copy(PROTOCOL, protocol)
    shutil.copy(AS_PUBLISHED, tmp_path / AS_PUBLISHED.name)
    settings.PROTOCOL_FILE = protocol
    return tmp_path


def test_the_check_reports_a_broken_plan_with_its_reasons(plans_dir, published_data):
    _row(published_data, 0, "age")["test"] = "chi_square"
    published_data["plan_id"] = "BROKEN"
    (plans_dir / "nct02025270.sap-broken.json").write_text(json.dumps(published_data))
    found = checks.analysis_plans_are_valid(None)
    assert [(m.id, m.msg) for m in found] == [
        (
            "reports.E002",
            "nct02025270.sap-broken.json: table table1 row age: test 'chi_square' does not fit "
            "age (continuous; use student_t, welch_t, mann_whitney, auto_two_groups)",
        )
    ]


def test_the_check_reports_an_unreadable_plan_and_a_plan_id_used_twice(plans_dir):
    (plans_dir / "nct02025270.sap-bad.json").write_text("{not json")
    shutil.copy(AS_PUBLISHED, plans_dir / "nct02025270.sap-copy.json")
    found = {(m.id, m.msg.split(":")[0]) for m in checks.analysis_plans_are_valid(None)}
    assert (
        "reports.E001",
        "Cannot read analysis plan " + str(plans_dir / "nct02025270.sap-bad.json"),
    ) in found
    assert ("reports.E003", "nct02025270.sap-copy.json") in found


def test_the_check_reports_a_visit_the_protocol_file_lacks(plans_dir, protocol_data):
    protocol = copy.deepcopy(protocol_data)
    protocol["visits"] = [v for v in protocol["visits"] if v["code"] != "M12"]
    (plans_dir / "nct02025270.json").write_text(json.dumps(protocol))
    messages = [m.msg for m in checks.analysis_plans_are_valid(None)]
    assert any("visit code 'M12' is not in the protocol file" in m for m in messages)
