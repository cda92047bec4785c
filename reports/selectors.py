"""Reads of the results: the trial's tables (responders vs non-responders, overall and within
the SCOS and spermatogenic-arrest subgroups), the study charts and each patient's charts,
computed live from the entered data.

Who is counted (shown on the page):
- treated = an injection is recorded; patients never treated (screening, screen failure,
  product not released) are counted apart and are not in the tables;
- evaluable = treated with at least one follow-up semen analysis; treated patients without
  one are "not yet evaluable" and are counted apart, never dropped silently;
- responder / non-responder, first sperm, baseline and after-therapy hormones and % change:
  followup.selectors.outcomes_from (the one place these rules live).

Every model is loaded once for the whole cohort: the number of queries does not grow with
the number of patients.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django.db.models import QuerySet
from django.utils.safestring import SafeString

from core.choices import NY
from followup.models import FollowUpVisit
from followup.selectors import (
    FOLLOWUP_KINDS,
    HORMONES,
    NO_RECORDS,
    OutcomeRecords,
    PatientOutcomes,
    baseline_profile,
    outcome_records,
    outcomes_from,
)
from labs.models import HormoneProfile, SemenAnalysis
from patients.hooks import Panel
from patients.models import (
    AzfMicrodeletion,
    Biopsy,
    Examination,
    Karyotype,
    MedicalHistory,
    Patient,
    Visit,
)
from patients.selectors import PatientRecord
from trial.models import StudySite, VisitDefinition
from trial.selectors import sites_for_user

from . import charts
from .statistics import (
    RULES,
    PValue,
    Step,
    Summary,
    compare_counts,
    compare_groups,
    compare_paired,
    cumulative_incidence,
    describe,
)

# ---- the patients and their characteristics -------------------------------------------------


class ExamCategory:
    NORMAL = "normal"
    VARICOCELE = "varicocele"
    CRYPTORCHIDISM = "cryptorchidism"
    CHOICES = (
        (NORMAL, "Normal"),
        (VARICOCELE, "Varicocele"),
        (CRYPTORCHIDISM, "Cryptorchidism"),
    )


def examination_category(
    *, examination: Examination | None, history: MedicalHistory | None
) -> str | None:
    """Cryptorchidism when the medical history records an undescended testis (operated or
    not); otherwise varicocele when the screening examination finds a varicocele of grade 1
    or more on either side; otherwise normal. None (not recorded) unless both the history
    and the examination are entered."""
    if examination is None or history is None:
        return None
    if history.cryptorchidism == NY.YES:
        return ExamCategory.CRYPTORCHIDISM
    if examination.has_varicocele:
        return ExamCategory.VARICOCELE
    return ExamCategory.NORMAL


@dataclass(frozen=True)
class CohortPatient:
    patient: Patient
    outcomes: PatientOutcomes
    records: OutcomeRecords
    examination: Examination | None = None
    history: MedicalHistory | None = None
    karyotype: Karyotype | None = None
    azf: AzfMicrodeletion | None = None
    biopsy: Biopsy | None = None

    @property
    def treated(self) -> bool:
        return self.outcomes.procedure_date is not None

    @property
    def evaluable(self) -> bool:
        return self.treated and self.outcomes.followup_analyses > 0

    @property
    def responder(self) -> bool:
        return self.outcomes.responder

    @property
    def histology(self) -> str | None:
        return self.biopsy.histology if self.biopsy else None


@dataclass(frozen=True)
class Characteristic:
    """A categorical row block of the tables: its categories and how a patient's is read."""

    code: str
    label: str
    levels: tuple[tuple[str, str], ...]
    value_of: Callable[[CohortPatient], str | None]
    rule: str = ""


CHARACTERISTICS = (
    Characteristic(
        "testicular_size",
        "Testicular size",
        (("normal", "Normal"), ("small", "Small")),
        lambda c: c.examination.testicular_size if c.examination else None,
        f"Small when either testis measures below {Examination.SMALL_TESTIS_ML} mL at the "
        "screening examination.",
    ),
    Characteristic(
        "examination",
        "Examination",
        ExamCategory.CHOICES,
        lambda c: examination_category(examination=c.examination, history=c.history),
        "Cryptorchidism: history of an undescended testis (operated or not). Otherwise "
        "varicocele: grade 1 or more on either side at the screening examination. Otherwise "
        "normal. Needs both the history and the examination.",
    ),
    Characteristic(
        "biopsy",
        "Biopsy (histology class)",
        tuple(Biopsy.Histology.choices),
        lambda c: c.histology,
    ),
    Characteristic(
        "karyotype",
        "Karyotype",
        tuple(Karyotype.Result.choices),
        lambda c: c.karyotype.result if c.karyotype else None,
    ),
    Characteristic(
        "azf",
        "Y-chromosome AZF microdeletion",
        tuple(AzfMicrodeletion.Result.choices),
        lambda c: c.azf.result if c.azf else None,
    ),
)


def _latest_per_patient(model, patient_ids) -> dict[int, object]:
    """The latest live record of a screening CRF per patient: one query."""
    found = {}
    for record in (
        model.objects.filter(visit__patient__in=patient_ids, voided_at__isnull=True)
        .select_related("visit")
        .order_by("assessment_date", "id")
    ):
        found[record.visit.patient_id] = record
    return found


def cohort_patients(*, patients: QuerySet[Patient]) -> list[CohortPatient]:
    """Every patient of `patients` (already scoped) with outcomes and screening
    characteristics, in 9 queries whatever their number."""
    patient_list = list(patients.select_related("site").order_by("site__code", "number"))
    ids = patients.order_by().values("pk")
    records = outcome_records(patients=patients)
    screening = {
        name: _latest_per_patient(model, ids)
        for name, model in (
            ("examination", Examination),
            ("history", MedicalHistory),
            ("karyotype", Karyotype),
            ("azf", AzfMicrodeletion),
            ("biopsy", Biopsy),
        )
    }
    cohort = []
    for patient in patient_list:
        patient_records = records.get(patient.pk, NO_RECORDS)
        cohort.append(
            CohortPatient(
                patient=patient,
                outcomes=outcomes_from(records=patient_records),
                records=patient_records,
                **{name: found.get(patient.pk) for name, found in screening.items()},
            )
        )
    return cohort


# ---- the tables ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountCell:
    count: int
    of: int  # patients of the group with the item recorded

    @property
    def percent(self) -> float | None:
        return 100 * self.count / self.of if self.of else None

    @property
    def label(self) -> str:
        if self.percent is None:
            return f"{self.count}"
        return f"{self.count} ({self.percent:.1f}%)"


@dataclass(frozen=True)
class CountRow:
    level: str
    label: str
    responders: CountCell
    non_responders: CountCell


@dataclass(frozen=True)
class CountTable:
    characteristic: Characteristic
    rows: list[CountRow]
    not_recorded: tuple[int, int]  # responders, non-responders without the item
    test: PValue

    @property
    def recorded(self) -> tuple[int, int]:
        if not self.rows:
            return (0, 0)
        return (self.rows[0].responders.of, self.rows[0].non_responders.of)

    @property
    def shown_rows(self) -> list[CountRow]:
        """The categories at least one patient has (the others are left out of the page)."""
        return [r for r in self.rows if r.responders.count or r.non_responders.count]


@dataclass(frozen=True)
class ContinuousRow:
    code: str
    label: str
    responders: Summary
    non_responders: Summary
    test: PValue


@dataclass(frozen=True)
class HormoneBlock:
    code: str
    label: str
    unit: str
    before: ContinuousRow
    after: ContinuousRow
    change: ContinuousRow
    change_formula: str
    within_responders: PValue
    within_non_responders: PValue

    @property
    def rows(self) -> tuple[ContinuousRow, ...]:
        return (self.before, self.after, self.change)


@dataclass(frozen=True)
class ResultsTable:
    """One set of the trial's tables (overall, or within a biopsy subgroup)."""

    code: str
    title: str
    responders: int
    non_responders: int
    not_evaluable: int
    age: ContinuousRow
    counts: list[CountTable]
    hormones: list[HormoneBlock]

    @property
    def evaluable(self) -> int:
        return self.responders + self.non_responders

    @property
    def responder_percent(self) -> float | None:
        return 100 * self.responders / self.evaluable if self.evaluable else None

    @property
    def responder_label(self) -> str:
        """`18/87 = 20.7%`."""
        if self.responder_percent is None:
            return "n/a"
        return f"{self.responders}/{self.evaluable} = {self.responder_percent:.1f}%"

    @property
    def non_responder_percent(self) -> float | None:
        return 100 * self.non_responders / self.evaluable if self.evaluable else None


def count_table(
    *, characteristic: Characteristic, responders: list, non_responders: list
) -> CountTable:
    """Counts of each category per group (percent of the group's patients with the item
    recorded), and the test of the whole table."""
    values_r = [characteristic.value_of(c) for c in responders]
    values_n = [characteristic.value_of(c) for c in non_responders]
    recorded_r = sum(v is not None for v in values_r)
    recorded_n = sum(v is not None for v in values_n)
    rows = [
        CountRow(
            level,
            label,
            CountCell(values_r.count(level), recorded_r),
            CountCell(values_n.count(level), recorded_n),
        )
        for level, label in characteristic.levels
    ]
    table = [[row.responders.count, row.non_responders.count] for row in rows]
    return CountTable(
        characteristic,
        rows,
        (len(values_r) - recorded_r, len(values_n) - recorded_n),
        compare_counts(table=table),
    )


def _hormone_values(cohort: list[CohortPatient], code: str, attribute: str) -> list:
    values = []
    for c in cohort:
        change = next(h for h in c.outcomes.hormones if h.code == code)
        values.append(getattr(change, attribute))
    return values


def continuous_row(
    *, code: str, label: str, responders: list, non_responders: list
) -> ContinuousRow:
    return ContinuousRow(
        code,
        label,
        describe(values=responders),
        describe(values=non_responders),
        compare_groups(first=responders, second=non_responders),
    )


def hormone_block(*, code: str, responders: list, non_responders: list) -> HormoneBlock:
    label, unit, fall = next((lbl, u, f) for c, lbl, u, f in HORMONES if c == code)

    def row(row_code: str, title: str, attribute: str) -> ContinuousRow:
        return continuous_row(
            code=row_code,
            label=title,
            responders=_hormone_values(responders, code, attribute),
            non_responders=_hormone_values(non_responders, code, attribute),
        )

    def within(group: list) -> PValue:
        return compare_paired(
            before=_hormone_values(group, code, "baseline"),
            after=_hormone_values(group, code, "after"),
        )

    return HormoneBlock(
        code=code,
        label=label,
        unit=unit,
        before=row("before", "Before therapy", "baseline"),
        after=row("after", "After therapy", "after"),
        change=row("change", "% change", "pct_change"),
        change_formula="(baseline - after) / baseline x 100"
        if fall
        else "(after - baseline) / baseline x 100",
        within_responders=within(responders),
        within_non_responders=within(non_responders),
    )


def results_table(*, code: str, title: str, cohort: list[CohortPatient]) -> ResultsTable:
    """The tables for the treated patients of `cohort`."""
    evaluable = [c for c in cohort if c.evaluable]
    responders = [c for c in evaluable if c.responder]
    non_responders = [c for c in evaluable if not c.responder]
    return ResultsTable(
        code=code,
        title=title,
        responders=len(responders),
        non_responders=len(non_responders),
        not_evaluable=sum(1 for c in cohort if c.treated and not c.evaluable),
        age=continuous_row(
            code="age",
            label="Age at enrolment (years)",
            responders=[c.patient.age_at_enrolment for c in responders],
            non_responders=[c.patient.age_at_enrolment for c in non_responders],
        ),
        counts=[
            count_table(characteristic=ch, responders=responders, non_responders=non_responders)
            for ch in CHARACTERISTICS
        ],
        hormones=[
            hormone_block(code=code, responders=responders, non_responders=non_responders)
            for code, *_ in HORMONES
        ],
    )


# The subgroups the trial reports, by biopsy histology.
SUBGROUPS = (
    ("overall", "All treated patients", lambda c: True),
    ("scos", "Sertoli-cell-only syndrome (SCOS)", lambda c: c.histology == Biopsy.Histology.SCOS),
    (
        "arrest",
        "Spermatogenic (maturation) arrest",
        lambda c: c.histology in Biopsy.ARREST,
    ),
)


# ---- the study charts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    title: str
    svg: SafeString
    caption: str = ""


def _scheduled_visit_codes(cohort: list[CohortPatient]) -> list[str]:
    """Screening, then the scheduled follow-up visits that have a hormone profile, by day."""
    days: dict[str, int] = {}
    for c in cohort:
        for p in c.records.profiles:
            d = p.visit.definition
            if d.kind == VisitDefinition.Kind.SCHEDULED and d.target_day is not None:
                days[d.code] = d.target_day
    return ["SCR", *sorted(days, key=days.get)]


def _value_at(c: CohortPatient, code: str, hormone: str):
    """The patient's hormone value at visit `code` (SCR: the baseline profile)."""
    if code == "SCR":
        profile = baseline_profile(profiles=c.records.profiles)
    else:
        profile = next(
            (
                p
                for p in reversed(c.records.profiles)
                if p.visit.definition.code == code
                and p.visit.definition.kind == VisitDefinition.Kind.SCHEDULED
            ),
            None,
        )
    return getattr(profile, hormone) if profile is not None else None


def mean_hormone_charts(*, cohort: list[CohortPatient]) -> list[Chart]:
    """Mean FSH, LH and testosterone at screening and each scheduled follow-up visit,
    responders vs non-responders (evaluable patients; unscheduled visits left out)."""
    evaluable = [c for c in cohort if c.evaluable]
    codes = _scheduled_visit_codes(evaluable)
    groups = (
        ("Responders", [c for c in evaluable if c.responder], charts.GREEN, ""),
        ("Non-responders", [c for c in evaluable if not c.responder], charts.GREY, "5 3"),
    )
    result = []
    for hormone, label, unit, _fall in HORMONES:
        series, counts = [], []
        for name, members, color, dash in groups:
            summaries = [
                describe(values=[_value_at(c, code, hormone) for c in members]) for code in codes
            ]
            counts.append([s.n for s in summaries])
            series.append(
                charts.Series(
                    name,
                    [s.mean for s in summaries],
                    color,
                    dash,
                    [f"mean of {s.n} patient{'s' if s.n != 1 else ''}" for s in summaries],
                )
            )
        result.append(
            Chart(
                f"Mean {label} by visit",
                charts.line_chart(
                    title=f"Mean {label} by visit",
                    categories=codes,
                    series=series,
                    y_label=f"{label} ({unit})",
                    category_notes=[f"n {r}/{n}" for r, n in zip(*counts, strict=True)],
                ),
                "Mean of the patients with a value at that visit; under each visit, n = "
                "responders / non-responders with a value. SCR = baseline (screening); "
                "unscheduled visits are not shown.",
            )
        )
    return result


def time_to_first_sperm(*, cohort: list[CohortPatient]) -> tuple[list[Step], list[tuple]]:
    """Kaplan-Meier steps (cumulative proportion with sperm by day since the procedure) and
    the censoring marks (day, proportion): responders count at their first sperm, the others
    are censored at their last follow-up semen analysis."""
    evaluable = [c for c in cohort if c.evaluable]
    events = [c.outcomes.first_sperm_day for c in evaluable if c.responder]
    censored = [c.outcomes.last_analysis_day for c in evaluable if not c.responder]
    events = [d for d in events if d is not None]
    censored = [d for d in censored if d is not None]
    steps = cumulative_incidence(event_days=events, censored_days=censored)

    def level_at(day: int) -> float:
        return max((s.proportion for s in steps if s.day <= day), default=0.0)

    return steps, [(d, level_at(d)) for d in sorted(censored)]


def time_to_first_sperm_chart(*, cohort: list[CohortPatient]) -> Chart:
    steps, censored = time_to_first_sperm(cohort=cohort)
    evaluable = sum(1 for c in cohort if c.evaluable)
    return Chart(
        "Time to first sperm",
        charts.step_chart(
            title="Time to first sperm (Kaplan-Meier)",
            steps=steps,
            censored=censored,
            x_label="Days since the procedure",
            y_label="Patients with sperm (%)",
            caption=f"{evaluable} evaluable patients",
        ),
        "Cumulative proportion of evaluable patients with sperm in the ejaculate by day since "
        "the procedure; patients without sperm are censored (+) at their last follow-up "
        "semen analysis.",
    )


# ---- the results page ------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultsScope:
    """Whose results: the user's sites (the filter's choices) and the site chosen, if any.
    `key` names the patients the results cover (the site ids) and the filter: a snapshot
    (reports.models.ResultsSnapshot) is shown only to a user of exactly this key."""

    sites: list[StudySite]
    site: StudySite | None = None

    @property
    def site_ids(self) -> list[int]:
        return [self.site.pk] if self.site is not None else sorted(s.pk for s in self.sites)

    @property
    def key(self) -> str:
        key = "sites:" + ",".join(str(pk) for pk in self.site_ids)
        return f"{key};filter:{self.site.pk}" if self.site is not None else key


def results_scope(*, user, site_code: str = "") -> ResultsScope:
    """The user's sites and the one asked for by code (another code: all of them): one
    query."""
    sites = list(sites_for_user(user=user))
    return ResultsScope(sites=sites, site=next((s for s in sites if s.code == site_code), None))


@dataclass(frozen=True)
class Results:
    site: StudySite | None
    sites: list[StudySite]
    enrolled: int
    not_treated: int
    tables: list[ResultsTable]
    charts: list[Chart] = field(default_factory=list)
    rules: tuple = RULES
    # Where the numbers come from: the stored computation (reports.models.ResultsSnapshot)
    # and the data version now (None: computed live for this request).
    snapshot: object | None = None
    current_version: int | None = None

    @property
    def overall(self) -> ResultsTable:
        return self.tables[0]

    @property
    def scope_label(self) -> str:
        if self.site is not None:
            return f"site {self.site.code} ({self.site.name})"
        return "all your sites" if len(self.sites) > 1 else "your site"

    @property
    def characteristic_rules(self) -> list[tuple[str, str]]:
        return [(ch.label, ch.rule) for ch in CHARACTERISTICS if ch.rule]

    @property
    def is_current(self) -> bool:
        """Computed from the data as they are now (live, or a snapshot of this version)."""
        return self.snapshot is None or self.snapshot.data_version == self.current_version


def results_patients(*, user, site_code: str = "") -> QuerySet[Patient]:
    """The patients the results are computed on: the user's sites, one site if asked."""
    patients = Patient.objects.for_user(user)
    if site_code:
        patients = patients.filter(site__code=site_code)
    return patients


def computed_results(*, site_ids: list[int], with_charts: bool = True) -> dict:
    """The computed part of the results (Results' enrolled, not_treated, tables, charts) for
    the patients of `site_ids`, in a bounded number of queries: what the results job
    stores (reports.snapshots)."""
    cohort = cohort_patients(patients=Patient.objects.filter(site_id__in=site_ids))
    tables = [
        results_table(code=code, title=title, cohort=[c for c in cohort if keep(c)])
        for code, title, keep in SUBGROUPS
    ]
    study_charts = []
    if with_charts:
        study_charts = [
            *mean_hormone_charts(cohort=cohort),
            time_to_first_sperm_chart(cohort=cohort),
        ]
    return {
        "enrolled": len(cohort),
        "not_treated": sum(1 for c in cohort if not c.treated),
        "tables": tables,
        "charts": study_charts,
    }


def study_results(*, user, site_code: str = "", with_charts: bool = True) -> Results:
    """Everything the results page, its CSV and its PDF show, computed now, in a bounded
    number of queries. `site_code` must be one of the user's sites (else: all of them).
    The page reads the stored computation instead (reports.services.results_for)."""
    scope = results_scope(user=user, site_code=site_code)
    return Results(
        site=scope.site,
        sites=scope.sites,
        **computed_results(site_ids=scope.site_ids, with_charts=with_charts),
    )


# ---- one patient's charts --------------------------------------------------------------------


@dataclass
class _VisitPoint:
    visit: Visit
    day: date | None = None
    fsh: float | None = None
    lh: float | None = None
    testosterone: float | None = None
    left_ml: float | None = None
    right_ml: float | None = None
    sperm: str | None = None
    concentration: float | None = None

    def seen_on(self, on: date) -> None:
        self.day = on if self.day is None else min(self.day, on)


# The best finding of a visit with several analyses (screening repeats 3).
_SPERM_RANK = {
    SemenAnalysis.SpermSeen.NONE: 0,
    SemenAnalysis.SpermSeen.PELLET_ONLY: 1,
    SemenAnalysis.SpermSeen.FRESH: 2,
}


def _num(value) -> float | None:
    return float(value) if value is not None else None


CHARTED_MODELS = (HormoneProfile, Examination, FollowUpVisit, SemenAnalysis)
CHARTED_KINDS = (VisitDefinition.Kind.SCREENING, *FOLLOWUP_KINDS)


def _charted_records(*, patient: Patient) -> list[tuple[Visit, object]]:
    """(visit, live record) of the charted CRFs at screening and follow-up: 4 queries."""
    found = []
    for model in CHARTED_MODELS:
        for record in model.objects.filter(
            visit__patient=patient,
            visit__definition__kind__in=CHARTED_KINDS,
            voided_at__isnull=True,
        ).select_related("visit", "visit__definition"):
            found.append((record.visit, record))
    return found


def _records_of(record: PatientRecord) -> list[tuple[Visit, object]]:
    """The same pairs from the patient page's record (already loaded: no query)."""
    return [
        (row.visit, cell.record)
        for row in record.rows
        if row.visit is not None and row.visit.definition.kind in CHARTED_KINDS
        for cell in row.cells
        if isinstance(cell.record, CHARTED_MODELS)
    ]


def chart_points(*, records: list[tuple[Visit, object]]) -> list[_VisitPoint]:
    """Per visit with data (screening and follow-up, by date): hormones, testicular volumes
    (screening examination, follow-up visit form) and the semen finding (the best of the
    visit's analyses: screening repeats 3)."""
    points: dict[int, _VisitPoint] = {}
    analyses: dict[int, list[SemenAnalysis]] = defaultdict(list)
    for visit, record in records:
        point = points.setdefault(visit.pk, _VisitPoint(visit))
        point.seen_on(record.assessment_date)
        if isinstance(record, HormoneProfile):
            point.fsh, point.lh = _num(record.fsh), _num(record.lh)
            point.testosterone = _num(record.testosterone)
        elif isinstance(record, Examination | FollowUpVisit):
            point.left_ml, point.right_ml = (
                _num(record.left_volume_ml),
                _num(record.right_volume_ml),
            )
        elif isinstance(record, SemenAnalysis):
            analyses[visit.pk].append(record)
    for visit_id, found in analyses.items():
        best = max(found, key=lambda a: _SPERM_RANK[a.sperm_seen])
        points[visit_id].sperm = best.sperm_seen
        points[visit_id].concentration = _num(best.concentration)
    return sorted(
        points.values(),
        key=lambda p: (p.day or date.max, p.visit.definition.order, p.visit.sequence),
    )


def patient_charts_from_loaded(*, visits: list[Visit], records: list) -> list[Chart]:
    """The same charts from records a caller already loaded (the casebook PDF): no query."""
    by_id = {v.pk: v for v in visits}
    pairs = [
        (by_id[r.visit_id], r)
        for r in records
        if isinstance(r, CHARTED_MODELS)
        and r.visit_id in by_id
        and by_id[r.visit_id].definition.kind in CHARTED_KINDS
    ]
    return patient_charts(patient=None, pairs=pairs)


def patient_charts(
    *, patient: Patient | None, record: PatientRecord | None = None, pairs: list | None = None
) -> list[Chart]:
    """The charts of one patient's course: FSH and LH, testosterone, testicular volume (left
    and right) and the semen finding, per visit with data. Each Chart.svg is self-contained
    SVG markup (no JavaScript, nothing fetched), for the patient page and the casebook PDF;
    templates/reports/_patient_charts.html lays them out (context: `patient_charts`).
    No chart (an empty list) while the patient has none of these values.
    4 queries; none when the caller passes the patient page's `record` (patient_record)."""
    if pairs is None:
        pairs = _records_of(record) if record is not None else _charted_records(patient=patient)
    points = chart_points(records=pairs)
    if not points:
        return []
    labels = [p.visit.label for p in points]
    dates = [p.day.strftime("%d %b %Y") if p.day else "" for p in points]

    def series(label: str, attribute: str, color: str, dash: str = "") -> charts.Series:
        return charts.Series(label, [getattr(p, attribute) for p in points], color, dash, dates)

    hormones = {code: (label, unit) for code, label, unit, _ in HORMONES}
    return [
        Chart(
            "FSH and LH",
            charts.line_chart(
                title="FSH and LH",
                categories=labels,
                series=[series("FSH", "fsh", charts.BLUE), series("LH", "lh", charts.ORANGE)],
                y_label=hormones["fsh"][1],
            ),
        ),
        Chart(
            hormones["testosterone"][0],
            charts.line_chart(
                title=hormones["testosterone"][0],
                categories=labels,
                series=[series("Testosterone", "testosterone", charts.PURPLE)],
                y_label=hormones["testosterone"][1],
            ),
        ),
        Chart(
            "Testicular volume",
            charts.line_chart(
                title="Testicular volume",
                categories=labels,
                series=[
                    series("Left", "left_ml", charts.BLUE),
                    series("Right", "right_ml", charts.PINK, "5 3"),
                ],
                y_label="mL",
                reference=(float(Examination.SMALL_TESTIS_ML), "small below 12 mL"),
            ),
        ),
        Chart(
            "Sperm found",
            charts.sperm_chart(
                title="Sperm found per visit",
                categories=labels,
                findings=[p.sperm for p in points],
                notes=[
                    f"{p.concentration:g} x 10^6/mL, {dates[i]}"
                    if p.sperm == SemenAnalysis.SpermSeen.FRESH
                    else dates[i]
                    for i, p in enumerate(points)
                ],
            ),
        ),
    ]


def patient_charts_panel(*, record: PatientRecord) -> Panel:
    """The patient page's charts (a patients.hooks panel): from the page's record, no query."""
    return Panel(
        "reports/_patient_charts.html",
        {"patient_charts": patient_charts(patient=record.patient, record=record)},
    )
