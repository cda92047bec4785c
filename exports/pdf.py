"""CRF PDFs: what goes on the page (built from PatientData and the CRF layouts); rendered by
core.pdf.render_pdf (render_to_string -> WeasyPrint, static files and fonts read from disk).

Nothing here queries the database: selectors load the data, this module arranges it."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from audit.models import AuditEntry
from core.identifiers import IDENTIFIER_HIDDEN, identifier_fields
from core.pdf import render_pdf
from patients.models import CrfRecord, Visit
from reports.selectors import patient_charts_from_loaded
from trial.models import Protocol

from .metadata import CrfItem, CrfLayout
from .selectors import OpenQuery, PatientData, SignatureLine


def utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def user_label(user) -> str:
    if user is None:
        return "system"
    full = user.get_full_name()
    return f"{full} ({user.get_username()})" if full else user.get_username()


# ---- what a filled CRF shows -----------------------------------------------------------------


@dataclass
class ItemRow:
    item: CrfItem
    value: str  # as the monitor reads it ("Yes", "08 May 2026", "22.50")
    code: str  # the stored code, shown beside a decoded value ("Y")
    flag: str = ""  # why the value is outside its expected range
    queries: list[OpenQuery] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return self.value == ""


@dataclass
class SectionBlock:
    title: str
    rows: list[ItemRow]


@dataclass
class Correction:
    """A change after first entry, from the audit trail."""

    at: str
    user_name: str
    label: str
    old: str
    new: str
    reason: str
    action: str


@dataclass
class FormBlock:
    layout: CrfLayout
    record: CrfRecord
    visit: Visit
    repeat: int
    sections: list[SectionBlock]
    corrections: list[Correction]
    entered: str
    other_queries: list[OpenQuery]

    @property
    def title(self) -> str:
        if self.repeat > 1:
            return f"{self.layout.title} ({self.record.sequence} of {self.repeat})"
        return self.layout.title

    @property
    def anchor(self) -> str:
        return f"form-{self.record.visit_id}-{self.layout.code}-{self.record.sequence}"

    @property
    def flag_count(self) -> int:
        return sum(1 for s in self.sections for r in s.rows if r.flag)

    @property
    def query_count(self) -> int:
        return sum(len(r.queries) for s in self.sections for r in s.rows) + len(self.other_queries)


@dataclass
class VisitBlock:
    visit: Visit
    forms: list[FormBlock]
    missing: list[str]
    signatures: list[SignatureLine]


@dataclass
class CrfDocument:
    title: str
    protocol: Protocol
    patient: object
    visits: list[VisitBlock]
    signatures: list[SignatureLine]
    consent_lines: list[str]
    generated_at: str
    generated_by: str
    with_cover: bool
    # The AE and con-med logs and the course charts (reports), in the whole casebook only.
    adverse_events: list = field(default_factory=list)
    concomitant_medications: list = field(default_factory=list)
    charts: list = field(default_factory=list)
    # The patient's audit chain head the document was built from (audit/chain.py).
    chain_head: object = None

    @property
    def contents(self) -> list[tuple[str, FormBlock]]:
        """(visit label, form) for the cover page."""
        return [(v.visit.label, f) for v in self.visits for f in v.forms]


def _item_row(
    item: CrfItem, record: CrfRecord, flags: dict, queries: list, hidden: frozenset[str]
) -> ItemRow:
    value = getattr(record, item.name)
    shown = item.name not in hidden or value in (None, "")
    return ItemRow(
        item=item,
        value=item.display(value) if shown else IDENTIFIER_HIDDEN,
        code=item.coded(value) if item.is_coded and shown else "",
        flag=flags.get(item.name, "") if shown else "",  # a flag's message quotes the value
        queries=[q for q in queries if q.field_name == item.name],
    )


def _corrections(layout: CrfLayout, entries: list[AuditEntry]) -> list[Correction]:
    rows = []
    for entry in entries:
        item = layout.item(entry.field_name)
        if entry.action == AuditEntry.Action.VOID:
            label, old, new = "Form voided", "", ""
        elif item is None:
            continue  # bookkeeping columns (visit, sequence) are not CRF items
        elif getattr(entry, "identifier_hidden", False):  # as exports.selectors left it
            label, old, new = item.label, entry.old_value, entry.new_value
        else:
            label, old, new = (
                item.label,
                item.display_text(entry.old_value),
                item.display_text(entry.new_value),
            )
        rows.append(
            Correction(
                at=utc_stamp(entry.timestamp),
                user_name=entry.user_name,
                label=label,
                old=old,
                new=new,
                reason=entry.reason,
                action=entry.get_action_display(),
            )
        )
    return rows


def form_block(
    *,
    layout: CrfLayout,
    record: CrfRecord,
    visit: Visit,
    repeat: int,
    audit: list[AuditEntry],
    queries: list[OpenQuery],
    identifiers_visible: bool = False,
) -> FormBlock:
    """One filled CRF in its sections: value, decode, unit, flag and open queries per item.
    The values of identifier fields (core.identifiers) are hidden unless `identifiers_visible`."""
    flags = record.flags()
    mine = [q for q in queries if q.form_code == layout.code and q.record_id == record.pk]
    hidden = frozenset() if identifiers_visible else identifier_fields(type(record))
    sections = []
    for section in layout.sections:
        rows = [_item_row(i, record, flags, mine, hidden) for i in section.items if i.stored]
        if rows:
            sections.append(SectionBlock(section.title, rows))
    shown = {r.item.name for s in sections for r in s.rows}
    corrections = _corrections(layout, audit)
    entered = f"Entered {utc_stamp(record.created_at)} by {user_label(record.created_by)}"
    if corrections:
        entered += f"; last changed {corrections[-1].at} by {user_label(record.updated_by)}"
    return FormBlock(
        layout=layout,
        record=record,
        visit=visit,
        repeat=repeat,
        sections=sections,
        corrections=corrections,
        entered=entered,
        other_queries=[q for q in mine if q.field_name not in shown],
    )


def _consent_lines(data: PatientData) -> list[str]:
    lines = []
    for c in data.consents:
        line = f"Version {c.consent_version.version} signed {c.signed_on:%d %b %Y}"
        if c.withdrawn_on:
            line += f"; withdrawn {c.withdrawn_on:%d %b %Y}"
        lines.append(line)
    return lines or ["No consent recorded"]


def crf_document(
    *,
    data: PatientData,
    layouts: dict[str, CrfLayout],
    model_codes: dict[int, str],
    title: str,
    generated_by,
    generated_at: datetime,
    visit_id: int | None = None,
    form: tuple[str, int] | None = None,
) -> CrfDocument:
    """The casebook of one patient; or one visit (visit_id); or one form (visit_id + form).

    `model_codes` maps ContentType ids to form codes (to find each record's audit rows)."""
    audit_by_record: dict[tuple[str, int], list[AuditEntry]] = {}
    for entry in data.audit:
        code = model_codes.get(entry.content_type_id)
        audit_by_record.setdefault((code, entry.object_id), []).append(entry)
    visits = []
    for visit in data.visits:
        if visit_id is not None and visit.pk != visit_id:
            continue
        found = data.records_at(visit)
        blocks, missing = [], []
        for code, repeat in visit.definition.expected_forms:
            if code not in layouts:
                continue  # named by the protocol, not built yet
            for sequence in range(1, repeat + 1):
                if form is not None and (code, sequence) != form:
                    continue
                record = found.get((code, sequence))
                title_ = f"{layouts[code].title} {sequence}" if repeat > 1 else layouts[code].title
                if record is None:
                    missing.append(title_)
                    continue
                blocks.append(
                    form_block(
                        layout=layouts[code],
                        record=record,
                        visit=visit,
                        repeat=repeat,
                        audit=audit_by_record.get((code, record.pk), []),
                        queries=data.queries,
                        identifiers_visible=data.identifiers_visible,
                    )
                )
        if visit_id is None and not blocks:
            continue  # the casebook lists visits with data; the cover lists what is missing
        visits.append(
            VisitBlock(
                visit=visit,
                forms=blocks,
                missing=missing if form is None else [],
                signatures=[s for s in data.signatures if s.visit_id == visit.pk],
            )
        )
    return CrfDocument(
        title=title,
        protocol=data.patient.site.protocol,
        patient=data.patient,
        visits=visits,
        signatures=[s for s in data.signatures if s.visit_id is None],
        consent_lines=_consent_lines(data),
        generated_at=utc_stamp(generated_at),
        generated_by=user_label(generated_by),
        with_cover=visit_id is None,
        adverse_events=data.adverse_events if visit_id is None else [],
        concomitant_medications=data.concomitant_medications if visit_id is None else [],
        charts=_course_charts(data) if visit_id is None else [],
        chain_head=data.chain_head,
    )


def _course_charts(data: PatientData) -> list:
    """FSH/LH, testosterone, testicular volume and sperm per visit, as on the patient page."""
    records = [r for rows in data.records.values() for r in rows]
    return patient_charts_from_loaded(visits=data.visits, records=records)


def crf_document_pdf(document: CrfDocument) -> bytes:
    return render_pdf(template_name="pdf/crf_document.html", context={"doc": document})


def blank_crf_pdf(
    *, layout: CrfLayout, protocol: Protocol, annotated: bool, generated_by, generated_at
) -> bytes:
    """The paper back-up of one CRF (empty boxes), or its annotated version for statisticians
    (variable names, data types, code lists, ranges)."""
    return render_pdf(
        template_name="pdf/blank_crf.html",
        context={
            "layout": layout,
            "protocol": protocol,
            "annotated": annotated,
            "generated_at": utc_stamp(generated_at),
            "generated_by": user_label(generated_by),
        },
    )
