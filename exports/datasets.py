"""CSV datasets for the statistician, generated row by row so a response can stream them:

* one file per CRF: one row per live form instance, coded values plus a `<field>_label`
  decode column for coded fields, keyed by study id, site, visit and form number;
* the patient-level analysis dataset: one row per patient, baseline (screening) and last
  follow-up values of every form the protocol schedules there, then the derived outcomes;
* the data dictionary describing both.

No direct identifier (name, phone, national id, address) or date of birth is ever read here:
patients are keyed by study id, age is given at enrolment."""

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from django.db import connection, models

# csv_lines is the app's one CSV writer (formula cells neutralised); kept importable from here.
from core import crf
from core.csv import FORMULA_PREFIXES, safe_cell
from core.csv import csv_lines as csv_lines
from core.identifiers import IDENTIFIER_HIDDEN, identifier_fields, identity_site_ids
from followup.selectors import outcome_records_of, outcomes_from
from patients.models import CrfRecord, Patient
from trial.models import Protocol, StudySite, VisitDefinition

from .metadata import CrfItem, CrfLayout, all_layouts, crf_layout
from .selectors import PatientData, form_text_values, form_values, patient_data_batches

FORMULA_START = frozenset(FORMULA_PREFIXES)
KEY_COLUMNS = [
    ("study_id", "Study ID (site prefix and number)"),
    ("site", "Site code"),
    ("visit", "Visit code (SCR, D0, M4 ... UNS, EOS)"),
    ("visit_sequence", "Visit number among visits with the same code (unscheduled visits)"),
    ("form_sequence", "Form number within the visit (semen analysis 1-3 at screening)"),
    ("assessment_date", "Date of the form (its first date item)"),
]
BASELINE_KINDS = (VisitDefinition.Kind.SCREENING,)
FOLLOWUP_KINDS = (VisitDefinition.Kind.SCHEDULED, VisitDefinition.Kind.UNSCHEDULED)


# ---- one CSV per form ------------------------------------------------------------------------


def _form_items(layout: CrfLayout) -> list[CrfItem]:
    return [i for i in layout.items if i.name != "assessment_date"]


def form_columns(layout: CrfLayout) -> list[str]:
    columns = [name for name, _ in KEY_COLUMNS]
    for item in _form_items(layout):
        columns.append(item.name)
        if item.is_coded:
            columns.append(f"{item.name}_label")
    return columns


def _identity_site_codes(*, user, model) -> frozenset[str] | None:
    """The sites whose values of the model's identifier fields the user may read; None when
    the model has none (core.identifiers). One query, only for a model with identifiers."""
    if not identifier_fields(model):
        return None
    sites = StudySite.objects.filter(pk__in=identity_site_ids(user=user))
    return frozenset(sites.values_list("code", flat=True))


def form_rows(*, user, code: str) -> Iterator[list[str]]:
    """Header, then one row per live instance of form `code` at the user's sites. Values of
    identifier fields read IDENTIFIER_HIDDEN unless the user is staff of the patient's site."""
    layout = crf_layout(code)
    items = _form_items(layout)
    model = crf.get(code).model
    identifiers = identifier_fields(model)
    shown_at = _identity_site_codes(user=user, model=model)
    yield form_columns(layout)
    for study_id, site, visit, visit_sequence, sequence, day, *values in form_values(
        user=user, code=code, fields=[i.name for i in items]
    ):
        row = [study_id, site, visit, str(visit_sequence), str(sequence), day.isoformat()]
        hide = shown_at is not None and site not in shown_at
        for item, value in zip(items, values, strict=True):
            if hide and item.name in identifiers and value not in (None, ""):
                row += [IDENTIFIER_HIDDEN, ""] if item.is_coded else [IDENTIFIER_HIDDEN]
                continue
            row.append(item.coded(value))
            if item.is_coded:
                row.append(item.decode(value))
        yield row


# The SQL text form (selectors.form_text_values) of each kind of model field; any other kind
# (float, a coded boolean) keeps the form on the Python path.
_SQL_KINDS = (
    (models.BooleanField, "boolean"),
    (models.DecimalField, "float"),
    (models.IntegerField, "integer"),
    (models.DateTimeField, "datetime"),
    (models.DateField, "date"),
    (models.TimeField, "time"),
    (models.CharField, "text"),
    (models.TextField, "text"),
)
CSV_ROWS_PER_CHUNK = 2000


def _sql_columns(model, items: list[CrfItem]) -> list[tuple[str, str, list | None]] | None:
    """(name, kind, labels) per item for form_text_values, or None when one item has no SQL
    form (the form then takes the Python path)."""
    columns = []
    for item in items:
        field = model._meta.get_field(item.name)
        kind = next((k for klass, k in _SQL_KINDS if isinstance(field, klass)), None)
        if kind is None or (item.is_coded and kind == "boolean"):
            return None
        # CrfItem.decode looks the code up as text: only text keys ever match.
        labels = [(c, label) for c, label in item.choices if isinstance(c, str)]
        columns.append((item.name, kind, labels if item.is_coded else None))
    return columns


def _csv_chunks(rows, guarded: list[int]) -> Iterator[str]:
    """CSV text, CSV_ROWS_PER_CHUNK rows a chunk, as core.csv writes it: `guarded` are the
    positions of text cells (the only ones that can start like a formula; numbers, dates and
    booleans never do, and a negative number stays a number), passed through safe_cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    batch = []
    for row in rows:
        if guarded:
            row = list(row)
            for i in guarded:
                value = row[i]
                if value and value[0] in FORMULA_START:
                    row[i] = safe_cell(value)
        batch.append(row)
        if len(batch) == CSV_ROWS_PER_CHUNK:
            writer.writerows(batch)
            batch.clear()
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerows(batch)
    if buffer.tell():
        yield buffer.getvalue()


def form_csv(*, user, code: str) -> Iterator[str]:
    """The CSV text of form_rows (byte for byte), in chunks of many rows: on PostgreSQL the
    cells are made text by the database (selectors.form_text_values) and written by the C
    csv writer, with no Python conversion per cell (issue 12: export <= 2x COPY). Other
    databases, and a form with identifier fields or a column kind without a SQL form, take
    the Python path (form_rows)."""
    layout = crf_layout(code)
    items = _form_items(layout)
    model = crf.get(code).model
    columns = None
    if connection.vendor == "postgresql" and not identifier_fields(model):
        columns = _sql_columns(model, items)
    if columns is None:
        rows = form_rows(user=user, code=code)
        yield from _csv_chunks(rows, guarded=list(range(len(form_columns(layout)))))
        return
    guarded = [0, 1, 2]  # study id, site code, visit code
    position = len(KEY_COLUMNS)
    for _name, kind, labels in columns:
        if kind == "text":
            guarded.append(position)
        position += 1
        if labels is not None:
            guarded.append(position)
            position += 1
    yield from _csv_chunks([form_columns(layout)], guarded=list(range(position)))
    yield from _csv_chunks(form_text_values(user=user, code=code, columns=columns), guarded)


# ---- the patient-level analysis dataset ------------------------------------------------------


@dataclass(frozen=True)
class DerivedOutcome:
    column: str
    label: str
    compute: Callable[[PatientData], object]


def _outcomes(data: PatientData):
    """The derived outcomes of CRF-SPEC.md, computed by the follow-up rules (one place) from
    the records the export already loaded: no query."""
    cached = getattr(data, "_derived_outcomes", None)
    if cached is not None:
        return cached
    visits = {v.pk: v for v in data.visits}

    def loaded(code):
        records = data.records.get(code, [])
        for record in records:
            record.visit = visits[record.visit_id]  # the loaded visit, with its definition
        return records

    data._derived_outcomes = outcomes_from(
        records=outcome_records_of(
            injections=loaded("injection"),
            analyses=loaded("semen_analysis"),
            profiles=loaded("hormones"),
        )
    )
    return data._derived_outcomes


def _hormone(data: PatientData, code: str, attribute: str):
    change = next(h for h in _outcomes(data).hormones if h.code == code)
    value = getattr(change, attribute)
    return value


DERIVED_OUTCOMES: tuple[DerivedOutcome, ...] = (
    DerivedOutcome(
        "responder",
        "Responder: sperm in the ejaculate at any follow-up (Y/N; empty before any "
        "follow-up analysis)",
        lambda d: ("Y" if o.responder else "N") if (o := _outcomes(d)).followup_analyses else None,
    ),
    DerivedOutcome(
        "procedure_date", "Procedure (injection) date", lambda d: _outcomes(d).procedure_date
    ),
    DerivedOutcome(
        "first_sperm_day",
        "Days from procedure to first sperm",
        lambda d: _outcomes(d).first_sperm_day,
    ),
    *(
        DerivedOutcome(
            f"{code}_{attribute}",
            f"{label} {text}",
            partial(_hormone, code=code, attribute=attribute),
        )
        for code, label in (("fsh", "FSH"), ("lh", "LH"), ("testosterone", "Testosterone"))
        for attribute, text in (
            ("baseline", "at baseline (screening)"),
            ("after", "after therapy (last follow-up)"),
            ("pct_change", "% change (CRF-SPEC formula)"),
        )
    ),
)


@dataclass
class PatientRow:
    """One patient's chosen records: baseline and last follow-up instance of each form."""

    data: PatientData
    baseline: dict[str, CrfRecord]
    last: dict[str, CrfRecord]


@dataclass(frozen=True)
class AnalysisColumn:
    name: str
    label: str
    source: str  # where the value comes from (data dictionary)
    value: Callable[[PatientRow], str]
    item: CrfItem | None = None  # the CRF item behind it (type, unit, codes)


def _latest(data: PatientData, code: str, kinds) -> CrfRecord | None:
    visits = {v.pk: v for v in data.visits}
    candidates = [
        r for r in data.records.get(code, []) if visits[r.visit_id].definition.kind in kinds
    ]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda r: (
            r.assessment_date,
            visits[r.visit_id].definition.order,
            visits[r.visit_id].sequence,
            r.sequence,
        ),
    )


def patient_row(data: PatientData, *, baseline_codes, followup_codes) -> PatientRow:
    return PatientRow(
        data=data,
        baseline={c: r for c in baseline_codes if (r := _latest(data, c, BASELINE_KINDS))},
        last={c: r for c in followup_codes if (r := _latest(data, c, FOLLOWUP_KINDS))},
    )


def _codes_at(definitions: list[VisitDefinition], kinds, registered: set[str]) -> list[str]:
    codes = []
    for definition in definitions:
        if definition.kind in kinds:
            for code, _repeat in definition.expected_forms:
                if code in registered and code not in codes:
                    codes.append(code)
    return codes


def _first_consent(row: PatientRow) -> str:
    dates = [c.signed_on for c in row.data.consents]
    return min(dates).isoformat() if dates else ""


def _withdrawn_on(row: PatientRow) -> str:
    dates = [c.withdrawn_on for c in row.data.consents if c.withdrawn_on]
    return min(dates).isoformat() if dates else ""


def _item_value(row: PatientRow, *, which: str, code: str, item: CrfItem) -> str:
    record = getattr(row, which).get(code)
    if record is None:
        return ""
    value = getattr(record, item.name)
    if (
        not row.data.identifiers_visible
        and item.name in identifier_fields(type(record))
        and value not in (None, "")
    ):
        return IDENTIFIER_HIDDEN
    return item.coded(value)


def _last_visit(row: PatientRow, *, code: str) -> str:
    record = row.last.get(code)
    if record is None:
        return ""
    return next(v.label for v in row.data.visits if v.pk == record.visit_id)


def _derived(row: PatientRow, *, outcome: DerivedOutcome) -> str:
    value = outcome.compute(row.data)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class AnalysisSpec:
    columns: list[AnalysisColumn]
    baseline_codes: list[str]
    followup_codes: list[str]


def analysis_spec(*, definitions: list[VisitDefinition]) -> AnalysisSpec:
    """The columns of analysis.csv, computed from the protocol's visits and the registry:
    `<form>_<variable>_bl` for each form scheduled at screening (the latest screening
    instance), `<form>_<variable>_last` for each follow-up form (the latest follow-up
    instance), then the derived outcomes."""
    layouts = {layout.code: layout for layout in all_layouts()}
    baseline_codes = _codes_at(definitions, BASELINE_KINDS, set(layouts))
    followup_codes = _codes_at(definitions, FOLLOWUP_KINDS, set(layouts))
    columns = [
        AnalysisColumn("study_id", "Study ID", "enrolment", lambda r: r.data.patient.study_id),
        AnalysisColumn("site", "Site code", "enrolment", lambda r: r.data.patient.site.code),
        AnalysisColumn(
            "enrolment_date",
            "Enrolment date",
            "enrolment",
            lambda r: r.data.patient.enrolment_date.isoformat(),
        ),
        AnalysisColumn(
            "age_at_enrolment",
            "Age at enrolment (years)",
            "enrolment",
            lambda r: str(r.data.patient.age_at_enrolment),
        ),
        AnalysisColumn("consent_date", "Date of first consent", "consent", _first_consent),
        AnalysisColumn(
            "consent_withdrawn_on", "Date consent was withdrawn", "consent", _withdrawn_on
        ),
    ]
    for code in baseline_codes:
        layout = layouts[code]
        for item in layout.items:
            columns.append(
                AnalysisColumn(
                    f"{code}_{item.name}_bl",
                    f"{layout.title}: {item.label} at baseline (latest screening form)",
                    f"{code} (screening)",
                    partial(_item_value, which="baseline", code=code, item=item),
                    item,
                )
            )
    for code in followup_codes:
        layout = layouts[code]
        columns.append(
            AnalysisColumn(
                f"{code}_last_visit",
                f"{layout.title}: visit of the last follow-up form",
                f"{code} (follow-up)",
                partial(_last_visit, code=code),
            )
        )
        for item in layout.items:
            columns.append(
                AnalysisColumn(
                    f"{code}_{item.name}_last",
                    f"{layout.title}: {item.label} at the last follow-up",
                    f"{code} (follow-up)",
                    partial(_item_value, which="last", code=code, item=item),
                    item,
                )
            )
    for outcome in DERIVED_OUTCOMES:
        columns.append(
            AnalysisColumn(
                outcome.column, outcome.label, "derived", partial(_derived, outcome=outcome)
            )
        )
    return AnalysisSpec(columns, baseline_codes, followup_codes)


def analysis_rows(*, user, protocol: Protocol | None) -> Iterator[list[str]]:
    """Header, then one row per patient at the user's sites."""
    definitions = list(protocol.visits.order_by("order")) if protocol else []
    spec = analysis_spec(definitions=definitions)
    yield [c.name for c in spec.columns]
    patients = Patient.objects.for_user(user)
    for data in patient_data_batches(patients=patients, audit="none", viewer=user):
        row = patient_row(
            data, baseline_codes=spec.baseline_codes, followup_codes=spec.followup_codes
        )
        yield [column.value(row) for column in spec.columns]


# ---- the data dictionary ---------------------------------------------------------------------

DICTIONARY_COLUMNS = [
    "dataset",
    "variable",
    "label",
    "section",
    "type",
    "length",
    "decimals",
    "unit",
    "code_list",
    "codes",
    "hard_range",
    "soft_range",
    "required",
    "loinc",
    "note",
]


def _dictionary_item(*, dataset: str, variable: str, label: str, section: str, item: CrfItem):
    return [
        dataset,
        variable,
        label,
        section,
        item.data_type,
        str(item.length or ""),
        "" if item.decimals is None else str(item.decimals),
        item.unit,
        item.codelist,
        item.codelist_text,
        item.hard_range,
        item.soft_range,
        "Y" if item.required else "N",
        item.loinc,
        item.help_text,
    ]


def dictionary_rows(*, protocol: Protocol | None) -> Iterator[list[str]]:
    """Every variable of every CSV: the key columns, each form's items (and their decode
    columns), the analysis dataset's columns."""
    yield DICTIONARY_COLUMNS
    for name, label in KEY_COLUMNS:
        yield ["every form"] + [name, label, "key"] + [""] * 11
    for layout in all_layouts():
        for section in layout.sections:
            for item in section.items:
                if not item.stored:
                    continue
                yield _dictionary_item(
                    dataset=f"{layout.code}.csv",
                    variable=item.name,
                    label=item.label,
                    section=section.title,
                    item=item,
                )
                if item.is_coded and item.name != "assessment_date":
                    yield (
                        [f"{layout.code}.csv", f"{item.name}_label", f"{item.label} (decode)"]
                        + [
                            section.title,
                            "text",
                        ]
                        + [""] * 9
                        + [f"label of the code in {item.name}"]
                    )
    definitions = list(protocol.visits.order_by("order")) if protocol else []
    for column in analysis_spec(definitions=definitions).columns:
        if column.item is None:
            yield ["analysis.csv", column.name, column.label, column.source] + [""] * 11
        else:
            yield _dictionary_item(
                dataset="analysis.csv",
                variable=column.name,
                label=column.label,
                section=column.source,
                item=column.item,
            )


# ---- the patient logs: adverse events, concomitant medications (not once-per-visit CRFs) ----

LOG_SKIPPED = {"id", "uuid", "created_at", "created_by", "updated_at", "updated_by", "patient"}


def _log_fields(model) -> list:
    return [f for f in model._meta.concrete_fields if f.name not in LOG_SKIPPED]


def _log_text(value) -> str:
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _log_rows(*, model, user) -> Iterator[list[str]]:
    """Header, then one row per entry of a patient log at the user's sites (voided ones
    included and marked, as the log keeps them): coded values with a `<field>_label` decode
    column. Keyed by study id and site: no identifier is read."""
    fields = _log_fields(model)
    header = ["study_id", "site"]
    for f in fields:
        header.append(f.name)
        if f.choices:
            header.append(f"{f.name}_label")
    yield header
    entries = (
        model.objects.for_user(user)
        .select_related("patient__site")
        .order_by("patient__site__code", "patient__number", "number")
    )
    for entry in entries.iterator(chunk_size=500):
        row = [entry.patient.study_id, entry.patient.site.code]
        for f in fields:
            value = getattr(entry, f.attname)
            row.append(_log_text(value))
            if f.choices:
                row.append(
                    str(dict(f.flatchoices).get(value, "")) if value not in (None, "") else ""
                )
        yield row


def adverse_event_rows(*, user) -> Iterator[list[str]]:
    from followup.models import AdverseEvent

    return _log_rows(model=AdverseEvent, user=user)


def concomitant_medication_rows(*, user) -> Iterator[list[str]]:
    """The CM log: CMSPID (number), CMTRT (medication), CMINDC, dose and unit, route,
    frequency, start and end dates, ongoing and the hormone-active class."""
    from followup.models import ConcomitantMedication

    return _log_rows(model=ConcomitantMedication, user=user)
