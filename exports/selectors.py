"""Reads for PDFs and exports. Every patient-scoped query starts from `for_user` (core.scoping);
patients are read in batches with one query per CRF model per batch, never one per record, so
a casebook ZIP or an export of the whole study runs a bounded number of queries and keeps at
most one batch in memory."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db.models import Case, CharField, F, Func, QuerySet, Value, When
from django.db.models.functions import Cast

from audit.chain import ChainHead, chain_heads
from audit.models import AuditEntry
from audit.selectors import hide_identifiers_in
from core import crf
from core.identifiers import identity_site_ids
from core.roles import RESULTS_ROLES, has_role
from patients.models import Consent, CrfRecord, Patient, Visit

from .models import PdfJob

PATIENT_BATCH_SIZE = 50


# ---- open data queries and signatures (monitoring) --------------------------------------------


@dataclass(frozen=True)
class OpenQuery:
    """An open data query on one field of one CRF record."""

    patient_id: int
    form_code: str
    record_id: int
    field_name: str
    text: str
    raised_by: str
    raised_at: datetime


@dataclass(frozen=True)
class SignatureLine:
    """An electronic signature: of one visit (visit_id) or of the whole casebook (None)."""

    patient_id: int
    visit_id: int | None
    signer_name: str
    signed_at: datetime
    meaning: str
    # For the ODM file: the signature's id, its signer and its meaning code.
    signature_id: int | None = None
    signer_id: int | None = None
    meaning_code: str = ""


def open_queries_for(*, patient_ids: list[int]) -> list[OpenQuery]:
    """The open (or answered, not yet closed) data queries of these patients, in one query:
    every CRF PDF marks them next to their field."""
    from monitoring.models import DataQuery

    rows = (
        DataQuery.objects.filter(patient_id__in=patient_ids)
        .exclude(status=DataQuery.Status.CLOSED)
        .select_related("raised_by")
        .order_by("created_at")
    )
    return [
        OpenQuery(
            patient_id=q.patient_id,
            form_code=q.form_code,
            record_id=q.object_id,
            field_name=q.field_name,
            text=q.question,
            raised_by=q.raised_by.get_username(),
            raised_at=q.created_at,
        )
        for q in rows
    ]


def signatures_for(*, patient_ids: list[int]) -> list[SignatureLine]:
    """The signatures of these patients that an admin has not voided, in one query; the PDFs
    print them in the visit's and the casebook's signature block (21 CFR 11.50: printed name,
    date and time, meaning)."""
    from monitoring.models import Signature

    rows = Signature.objects.filter(patient_id__in=patient_ids, revocation__isnull=True).order_by(
        "signed_at"
    )
    return [
        SignatureLine(
            patient_id=sig.patient_id,
            visit_id=sig.visit_id,
            signer_name=sig.signer_full_name,
            signed_at=sig.signed_at,
            meaning=sig.get_meaning_display(),
            signature_id=sig.pk,
            signer_id=sig.signer_id,
            meaning_code=sig.meaning,
        )
        for sig in rows
    ]


def adverse_events_for(*, patient_ids: list[int]) -> list:
    """The adverse-event logs of these patients, in one query (AE number order)."""
    from followup.models import AdverseEvent

    return list(AdverseEvent.objects.filter(patient_id__in=patient_ids).order_by("number"))


def concomitant_medications_for(*, patient_ids: list[int]) -> list:
    """The concomitant-medication logs of these patients, in one query (number order)."""
    from followup.models import ConcomitantMedication

    return list(ConcomitantMedication.objects.filter(patient_id__in=patient_ids).order_by("number"))


# ---- one patient's record, in batches --------------------------------------------------------


@dataclass
class PatientData:
    """What a casebook, the analysis dataset and the ODM export need about one patient."""

    patient: Patient
    visits: list[Visit] = field(default_factory=list)
    # form code -> live records, in visit order then sequence
    records: dict[str, list[CrfRecord]] = field(default_factory=dict)
    consents: list[Consent] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    # The last link of the patient's audit chain when the data were read (audit/chain.py):
    # printed on the casebook, so the paper can be tied to the trail later.
    chain_head: ChainHead | None = None
    signatures: list[SignatureLine] = field(default_factory=list)
    queries: list[OpenQuery] = field(default_factory=list)
    # The adverse-event log (followup.AdverseEvent), voided events included and marked.
    adverse_events: list = field(default_factory=list)
    # The concomitant-medication log (followup.ConcomitantMedication), the same way.
    concomitant_medications: list = field(default_factory=list)
    # May the reader see this patient's identifiers (core.identifiers)? If not, the audit
    # values of identifier fields are hidden already, and PDFs and ODM hide their values too.
    identifiers_visible: bool = False

    def records_at(self, visit: Visit) -> dict[tuple[str, int], CrfRecord]:
        return {
            (code, r.sequence): r
            for code, rows in self.records.items()
            for r in rows
            if r.visit_id == visit.pk
        }


def crf_content_types() -> dict[int, str]:
    """ContentType id -> form code, for every registered CRF model (cached by Django)."""
    definitions = crf.all_definitions()
    types = ContentType.objects.get_for_models(*[d.model for d in definitions])
    return {types[d.model].pk: d.code for d in definitions}


def _related_fields(model) -> list[str]:
    """Foreign keys shown by value (who entered, any FK a CRF adds), loaded in the same query."""
    return [f.name for f in model._meta.concrete_fields if f.is_relation and f.name != "visit"]


def live_records(*, model, patient_ids: list[int]) -> QuerySet:
    return (
        model.objects.filter(visit__patient_id__in=patient_ids, voided_at__isnull=True)
        .select_related(*_related_fields(model))
        .order_by("visit__definition__order", "visit__sequence", "sequence")
    )


def crf_audit_entries(*, patient_ids: list[int], corrections_only: bool) -> QuerySet:
    """The audit trail of the patients' CRFs (never of their identifiers or consent scans)."""
    entries = AuditEntry.objects.filter(
        patient_id__in=patient_ids, content_type_id__in=list(crf_content_types())
    )
    if corrections_only:
        entries = entries.exclude(action=AuditEntry.Action.CREATE)
    return entries.order_by("id")


def patient_data_batches(
    *,
    patients: QuerySet[Patient],
    audit: str = "corrections",
    batch_size: int = PATIENT_BATCH_SIZE,
    viewer=None,
) -> Iterator[PatientData]:
    """PatientData for each patient of `patients` (already scoped by the caller), in study-id
    order. `audit`: "corrections" (changes after first entry, for PDFs), "all" (ODM) or
    "none". `viewer`: who will read it (identifiers hidden unless staff of the patient's site;
    no viewer sees none). Queries per batch: patients, visits, consents, one per CRF model,
    audit, hooks; and one in all for the viewer's sites."""
    ids = list(patients.order_by("site__code", "number").values_list("pk", flat=True))
    definitions = crf.all_definitions()
    visible_sites = identity_site_ids(user=viewer)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        by_id = {
            p.pk: PatientData(patient=p, identifiers_visible=p.site_id in visible_sites)
            for p in Patient.objects.filter(pk__in=chunk).select_related("site", "site__protocol")
        }
        # Read first: everything the documents print was in the trail up to this head.
        for head in chain_heads(patient_ids=chunk):
            by_id[int(head.chain.removeprefix("patient:"))].chain_head = head
        for visit in (
            Visit.objects.filter(patient_id__in=chunk)
            .select_related("definition")
            .order_by("definition__order", "sequence")
        ):
            by_id[visit.patient_id].visits.append(visit)
        for consent in (
            Consent.objects.filter(patient_id__in=chunk)
            .select_related("consent_version")
            .order_by("signed_at")
        ):
            by_id[consent.patient_id].consents.append(consent)
        visit_patient = {v.pk: pid for pid, d in by_id.items() for v in d.visits}
        for definition in definitions:
            for record in live_records(model=definition.model, patient_ids=chunk):
                data = by_id[visit_patient[record.visit_id]]
                data.records.setdefault(definition.code, []).append(record)
        if audit != "none":
            entries = list(crf_audit_entries(patient_ids=chunk, corrections_only=audit != "all"))
            for entry in entries:
                entry.patient = by_id[entry.patient_id].patient  # loaded: no query per row
                by_id[entry.patient_id].audit.append(entry)
            hide_identifiers_in(entries, visible_sites=visible_sites)
        for line in signatures_for(patient_ids=chunk):
            by_id[line.patient_id].signatures.append(line)
        for query in open_queries_for(patient_ids=chunk):
            by_id[query.patient_id].queries.append(query)
        for event in adverse_events_for(patient_ids=chunk):
            by_id[event.patient_id].adverse_events.append(event)
        for medication in concomitant_medications_for(patient_ids=chunk):
            by_id[medication.patient_id].concomitant_medications.append(medication)
        for pk in chunk:
            yield by_id[pk]


def patient_data(*, patient: Patient, viewer=None) -> PatientData:
    """One patient's record (the caller has already checked the user may see it)."""
    patients = Patient.objects.filter(pk=patient.pk)
    return next(patient_data_batches(patients=patients, viewer=viewer))


FORM_KEY_FIELDS = (
    "visit__patient__study_id",
    "visit__patient__site__code",
    "visit__definition__code",
    "visit__sequence",
    "sequence",
    "assessment_date",
)
EXPORT_CHUNK_SIZE = 500
# Rows of text are small: larger fetches, fewer round trips (memory stays flat: ~1 MB).
EXPORT_TEXT_CHUNK_SIZE = 5000


def live_forms(*, user, model):
    """The live instances of one CRF model at the user's sites, in the exports' order (site,
    patient, visit, form sequence): one definition for the Python and the SQL-text paths."""
    return (
        model.objects.for_user(user)
        .filter(voided_at__isnull=True)
        .order_by(
            "visit__patient__site__code",
            "visit__patient__number",
            "visit__definition__order",
            "visit__sequence",
            "sequence",
        )
    )


def form_values(*, user, code: str, fields: list[str]) -> Iterator[tuple]:
    """Every live instance of one CRF at the user's sites as tuples (the FORM_KEY_FIELDS, then
    `fields`), streamed from the database in chunks: memory does not grow with the study."""
    return (
        live_forms(user=user, model=crf.get(code).model)
        .values_list(*FORM_KEY_FIELDS, *fields)
        .iterator(chunk_size=EXPORT_CHUNK_SIZE)
    )


# PostgreSQL text of each kind of CRF column, exactly as CrfItem.coded() writes it in Python
# (ISO dates and times, UTC "Z" date-times, "true"/"false", numbers as stored). A kind not
# listed here (float) has no SQL form: its form is exported by the Python path (form_rows).
_PG_TEXT = {
    "date": "to_char(%(expressions)s, 'YYYY-MM-DD')",
    "datetime": "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    # time.isoformat(): seconds, and microseconds only when there are some.
    "time": (
        "CASE WHEN EXTRACT(MICROSECONDS FROM %(expressions)s)::bigint %%%% 1000000 = 0 "
        "THEN to_char(%(expressions)s, 'HH24:MI:SS') "
        "ELSE to_char(%(expressions)s, 'HH24:MI:SS.US') END"
    ),
    "boolean": "CASE WHEN %(expressions)s THEN 'true' WHEN NOT %(expressions)s THEN 'false' END",
    "integer": "(%(expressions)s)::text",
    "float": "(%(expressions)s)::text",  # DecimalField only (checked by the caller)
    "text": "%(expressions)s",
}


def _text_of(name: str, kind: str):
    return Func(F(name), template=_PG_TEXT[kind], output_field=CharField())


def _decoded(name: str, labels: list[tuple[str, str]]):
    """The label of a coded column in SQL: the item's choices, else the code itself (as
    CrfItem.decode), NULL for no value (written as an empty cell)."""
    whens = [When(**{name: code}, then=Value(label)) for code, label in labels if code != ""]
    return Case(
        When(**{f"{name}__isnull": True}, then=Value(None)),
        *whens,
        default=Cast(name, CharField()),
        output_field=CharField(),
    )


def form_text_values(
    *, user, code: str, columns: list[tuple[str, str, list | None]]
) -> Iterator[tuple]:
    """form_values as text computed by PostgreSQL: every live instance of one CRF at the
    user's sites, in the same order, as tuples of strings (None for no value): the key
    columns, then per `columns` entry (name, kind, labels) its value, and its label when
    `labels` is a list of (code, label). PostgreSQL only (to_char); a streamed cursor in
    chunks of EXPORT_TEXT_CHUNK_SIZE rows. Python converts nothing per cell."""
    model = crf.get(code).model
    annotations = {
        "k_study": F("visit__patient__study_id"),
        "k_site": F("visit__patient__site__code"),
        "k_visit": F("visit__definition__code"),
        "k_vseq": _text_of("visit__sequence", "integer"),
        "k_seq": _text_of("sequence", "integer"),
        "k_date": _text_of("assessment_date", "date"),
    }
    for n, (name, kind, labels) in enumerate(columns):
        annotations[f"c{n}"] = _text_of(name, kind)
        if labels is not None:
            annotations[f"c{n}_label"] = _decoded(name, labels)
    return (
        live_forms(user=user, model=model)
        .annotate(**annotations)
        .values_list(*annotations)
        .iterator(chunk_size=EXPORT_TEXT_CHUNK_SIZE)
    )


# ---- PDF jobs --------------------------------------------------------------------------------


def pdf_jobs_for_user(*, user) -> QuerySet[PdfJob]:
    """The user's own jobs whose patients and sites they may still see (and results reports
    only while their role may read the results)."""
    jobs = (
        PdfJob.objects.for_user(user)
        .filter(requested_by=user)
        .select_related("patient", "site", "visit__definition")
    )
    if not has_role(user, *RESULTS_ROLES):
        jobs = jobs.exclude(kind=PdfJob.Kind.RESULTS)
    return jobs
