"""Reads of the patient record: consent state, stage, the visit x form matrix, the list."""

from dataclasses import dataclass, field, replace
from datetime import date

from django.db.models import Case, Count, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models import CharField as CharFieldExpr

from core import crf
from core.limits import has_soft_limits, soft_limit_q
from core.roles import DATA_ENTRY_ROLES, Role, has_role
from trial.models import ConsentVersion, VisitDefinition
from trial.selectors import current_consent_version

from . import hooks
from .models import Consent, CrfRecord, Eligibility, Patient, PatientStatus, Visit


class Stage:
    AWAITING_CONSENT = "awaiting_consent"
    SCREENING = "screening"
    SCREEN_FAILURE = "screen_failure"
    ELIGIBLE = "eligible"
    FOLLOW_UP = "follow_up"
    ENDED = "ended"
    WITHDRAWN = "withdrawn"

    LABELS = {
        AWAITING_CONSENT: "Awaiting consent",
        SCREENING: "Screening",
        SCREEN_FAILURE: "Screen failure",
        ELIGIBLE: "Eligible, awaiting procedure",
        FOLLOW_UP: "Procedure done, in follow-up",
        ENDED: "Study ended",
        WITHDRAWN: "Withdrawn",
    }
    CHOICES = list(LABELS.items())
    # No further visit is expected of a patient at these stages.
    CLOSED = (SCREEN_FAILURE, WITHDRAWN, ENDED)


# ---- consent ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentStatus:
    state: str  # "none" | "valid" | "reconsent_due" | "withdrawn"
    message: str
    consent: Consent | None = None
    first_signed_on: date | None = None
    current_version: ConsentVersion | None = None

    @property
    def allows_data_entry(self) -> bool:
        return self.state == "valid"

    def allows_entry(self, *, after_withdrawal: bool = False) -> bool:
        """The consent rule for clinical data, one place (patients.services.crf_save and the
        CRF page): a current, non-withdrawn consent. `after_withdrawal`: a form that closes a
        withdrawn patient's record (end of study) is still accepted then."""
        return self.allows_data_entry or (after_withdrawal and self.state == "withdrawn")


_LOOK_UP = object()


def consent_status(
    *, patient: Patient, consents: list[Consent] | None = None, current=_LOOK_UP
) -> ConsentStatus:
    """Callers that check many patients pass `consents` (prefetched) and `current` (the
    protocol's current ConsentVersion) so that this costs no query."""
    if consents is None:
        consents = list(patient.consents.select_related("consent_version", "obtained_by"))
    if current is _LOOK_UP:
        current = current_consent_version(protocol=patient.site.protocol)
    first_signed_on = min((c.signed_on for c in consents), default=None)
    withdrawn = [c for c in consents if c.withdrawn_on]
    if withdrawn:
        c = withdrawn[0]
        return ConsentStatus(
            "withdrawn",
            f"Consent was withdrawn on {c.withdrawn_on:%d %b %Y}: no further data can be entered.",
            c,
            first_signed_on,
            current,
        )
    if not consents:
        return ConsentStatus(
            "none",
            "No consent is recorded: record the patient's consent before entering any data.",
            None,
            None,
            current,
        )
    latest = max(consents, key=lambda c: c.signed_at)
    if current and not any(c.consent_version_id == current.pk for c in consents):
        return ConsentStatus(
            "reconsent_due",
            f"Consent version {current.version} is now in effect: the patient must re-consent "
            "before more data is entered.",
            latest,
            first_signed_on,
            current,
        )
    return ConsentStatus("valid", "Consent is current.", latest, first_signed_on, current)


# ---- stage and list --------------------------------------------------------------------------


def _eligible_q() -> Q:
    """Eligible, for any protocol: Eligibility.clean() has every criterion the protocol lists
    answered and every other slot blank, so no inclusion No and no exclusion Yes is enough
    (INCL01 Yes: a protocol has at least one inclusion criterion)."""
    refused = Q()
    for name in Eligibility.INCLUSION:
        refused |= Q(**{name: "N"})
    for name in Eligibility.EXCLUSION:
        refused |= Q(**{name: "Y"})
    return Q(incl01="Y") & ~refused


# The forms whose live rows decide the stage (with_stage), besides the consents.
STAGE_FORMS = ("eligibility", "injection", "end_of_study")


def _live_rows(code: str):
    """Live rows of CRF `code` for the outer patient; None when this build lacks the form."""
    if not crf.is_registered(code):
        return None
    return crf.get(code).model.objects.filter(visit__patient=OuterRef("pk"), voided_at__isnull=True)


def with_stage(queryset: QuerySet[Patient]) -> QuerySet[Patient]:
    """Annotate `stage`, computed in SQL so that lists can filter on it (one place)."""
    consents = Consent.objects.filter(patient=OuterRef("pk"))
    eligibility = Eligibility.objects.filter(visit__patient=OuterRef("pk"), voided_at__isnull=True)
    _, injected, ended = (_live_rows(code) for code in STAGE_FORMS)
    later_stages = []
    if ended is not None:
        later_stages.append(When(Exists(ended), then=Value(Stage.ENDED)))
    return queryset.annotate(
        stage=Case(
            When(Exists(consents.filter(withdrawn_on__isnull=False)), then=Value(Stage.WITHDRAWN)),
            *later_stages,
            When(~Exists(consents), then=Value(Stage.AWAITING_CONSENT)),
            *(
                [When(Exists(injected), then=Value(Stage.FOLLOW_UP))]
                if injected is not None
                else []
            ),
            When(Exists(eligibility.filter(_eligible_q())), then=Value(Stage.ELIGIBLE)),
            When(Exists(eligibility), then=Value(Stage.SCREEN_FAILURE)),
            default=Value(Stage.SCREENING),
            output_field=CharFieldExpr(),
        )
    )


def with_flag_count(queryset: QuerySet[Patient]) -> QuerySet[Patient]:
    """Annotate `has_flags`: any live CRF value outside its expected range."""
    condition = Q(pk__in=[])
    for definition in crf.all_definitions():
        model = definition.model
        if has_soft_limits(model):
            rows = model.objects.filter(
                soft_limit_q(model), visit__patient=OuterRef("pk"), voided_at__isnull=True
            )
            condition |= Exists(rows)
    return queryset.annotate(
        has_flags=Case(When(condition, then=Value(True)), default=Value(False))
    )


def status_affected_by(code: str) -> bool:
    """Can a write of CRF `code` change the stored stage or flags (with_stage's forms, or a
    form with soft limits, with_flag_count's)? Other forms' saves leave PatientStatus alone."""
    return code in STAGE_FORMS or (crf.is_registered(code) and has_soft_limits(crf.get(code).model))


def computed_status(queryset: QuerySet[Patient]) -> QuerySet:
    """(pk, site_id, stage, has_flags) of each patient, computed from the records now: what
    PatientStatus stores (the same columns, in its order: the backfill inserts this SELECT)."""
    return (
        with_flag_count(with_stage(queryset))
        .order_by()
        .values_list("pk", "site_id", "stage", "has_flags")
    )


def status_drift(queryset: QuerySet[Patient] | None = None) -> list[tuple]:
    """Patients whose stored stage or flags are not what the records say now (a row written
    by raw SQL past the services, a row missing): [(patient id, site id, (stored stage,
    stored flags) or None, (stage, has_flags) computed)]. One query (the whole study's EXISTS:
    for a check, not for a page)."""
    queryset = Patient.objects.all() if queryset is None else queryset
    rows = computed_status(queryset).values_list(
        "pk", "site_id", "stage", "has_flags", "stored_status__stage", "stored_status__has_flags"
    )
    return [
        (pk, site_id, None if stored is None else (stored, stored_flags), (stage, flags))
        for pk, site_id, stage, flags, stored, stored_flags in rows.order_by("pk")
        if (stored, stored_flags) != (stage, flags)
    ]


@dataclass(frozen=True)
class StageCounts:
    """The home page's figures: patients per stage, in all and flagged."""

    by_stage: dict[str, int]
    total: int
    flagged: int

    @property
    def stages(self) -> list[tuple[str, str, int]]:
        return [(key, label, self.by_stage.get(key, 0)) for key, label in Stage.CHOICES]


def stage_counts(*, user) -> StageCounts:
    """Patients at the user's sites by stored stage, and flagged: one aggregate over
    PatientStatus (its (site, stage) and (site, has_flags) indexes), whatever the number of
    patients."""
    figures = PatientStatus.objects.for_user(user).aggregate(
        total=Count("pk"),
        flagged=Count("pk", filter=Q(has_flags=True)),
        **{f"stage_{key}": Count("pk", filter=Q(stage=key)) for key in Stage.LABELS},
    )
    return StageCounts(
        by_stage={key: figures[f"stage_{key}"] for key in Stage.LABELS},
        total=figures["total"],
        flagged=figures["flagged"],
    )


def patient_list(
    *, user, site_code: str = "", stage: str = "", flagged: bool = False, search: str = ""
) -> QuerySet[Patient]:
    """The user's patients with their stored `stage` and `has_flags` (PatientStatus)."""
    qs = (
        Patient.objects.for_user(user)
        .select_related("site")
        .annotate(stage=F("stored_status__stage"), has_flags=F("stored_status__has_flags"))
    )
    if site_code:
        qs = qs.filter(site__code=site_code)
    if stage:
        qs = qs.filter(stage=stage)
    if flagged:
        qs = qs.filter(has_flags=True)
    if search:
        qs = qs.filter(study_id__icontains=search.strip())
    return qs.order_by("site__code", "number")


def patient_detail_queryset() -> QuerySet[Patient]:
    """Patients with their stage; callers scope it (scoped_object_or_404 / for_user)."""
    return with_stage(Patient.objects.select_related("site", "site__protocol"))


# ---- the visit x form matrix -----------------------------------------------------------------


@dataclass
class FormCell:
    code: str
    title: str
    sequence: int
    repeat: int
    record: object | None = None
    flags: dict = field(default_factory=dict)
    # Filled in by a record annotator (patients.hooks; monitoring).
    open_queries: int = 0
    sdv: str = ""  # pending / verified / changed (monitoring.selectors.SdvStatus)

    @property
    def status(self) -> str:
        if self.record is None:
            return "missing"
        return "flagged" if self.flags else "entered"

    @property
    def label(self) -> str:
        return f"{self.title} {self.sequence}" if self.repeat > 1 else self.title


@dataclass
class VisitRow:
    definition: VisitDefinition
    visit: Visit | None
    cells: list[FormCell]
    # Filled in by record annotators (patients.hooks): the signature by monitoring; the
    # status (upcoming / open / overdue / missed / done...) by followup, which clears
    # `awaited` for a visit that is missed or no longer expected (never what is due next).
    signature: object | None = None
    signature_status: str = ""
    status: str = ""
    status_label: str = ""
    status_css: str = ""
    awaited: bool = True

    @property
    def complete(self) -> bool:
        return bool(self.cells) and all(c.record is not None for c in self.cells)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"missing": 0, "entered": 0, "flagged": 0}
        for cell in self.cells:
            counts[cell.status] += 1
        return counts


@dataclass
class PatientRecord:
    patient: Patient
    consent: ConsentStatus
    rows: list[VisitRow]
    azoospermia_confirmed: bool | None
    # Set by patient_page_record from the patient's stage (Stage.CLOSED): then nothing is due.
    closed: bool = False
    # [(signature, status)], newest first: filled in by a record annotator (monitoring).
    signatures: list = field(default_factory=list)

    @property
    def next_due(self) -> VisitRow | None:
        """The first visit still waiting for data whose time has not passed: a missed visit
        stays in the matrix (its forms can be entered late) but is not what is due next."""
        if self.closed:
            return None
        for row in self.rows:
            if not row.awaited:
                continue
            if row.visit is not None and row.cells and not row.complete:
                return row
        return None

    @property
    def records(self) -> list:
        return [c.record for r in self.rows for c in r.cells if c.record is not None]

    @property
    def flags(self) -> list[tuple[FormCell, str, str]]:
        return [(c, f, m) for r in self.rows for c in r.cells for f, m in c.flags.items()]


def visit_forms_status(
    *, patient: Patient, visits: list[Visit]
) -> dict[tuple[int, str, int], object]:
    """(visit id, form code, sequence) -> live record, with one query per CRF model."""
    found = {}
    codes = {
        code for v in visits for code, _ in v.definition.expected_forms if crf.is_registered(code)
    }
    for code in sorted(codes):
        model = crf.get(code).model
        for record in model.objects.filter(visit__patient=patient, voided_at__isnull=True):
            found[(record.visit_id, code, record.sequence)] = record
    return found


def patient_record(*, patient: Patient) -> PatientRecord:
    """Everything the patient page shows, in a bounded number of queries."""
    consents = list(patient.consents.select_related("consent_version", "obtained_by"))
    visits = list(
        patient.visits.select_related("definition").order_by(
            "definition__order", "definition__target_day", "sequence"
        )
    )
    # Extension visits (M14, M16...) share M12's rank; they show only for patients who have them.
    definitions = list(
        patient.site.protocol.visits.select_related("extension").order_by("order", "target_day")
    )
    records = visit_forms_status(patient=patient, visits=visits)
    by_definition: dict[int, list[Visit]] = {}
    for v in visits:
        by_definition.setdefault(v.definition_id, []).append(v)
    rows = []
    for definition in definitions:
        expected = [(c, n) for c, n in definition.expected_forms if crf.is_registered(c)]
        for visit in by_definition.get(definition.pk, [None]):
            if visit is None and (
                definition.kind in (VisitDefinition.Kind.UNSCHEDULED, VisitDefinition.Kind.END)
                or hasattr(definition, "extension")
            ):
                continue  # shown only once created
            cells = []
            for code, repeat in expected:
                for seq in range(1, repeat + 1):
                    record = records.get((visit.pk, code, seq)) if visit else None
                    cells.append(
                        FormCell(
                            code,
                            crf.get(code).title,
                            seq,
                            repeat,
                            record,
                            record.flags() if record is not None else {},
                        )
                    )
            rows.append(VisitRow(definition, visit, cells))
    return PatientRecord(
        patient=patient,
        consent=consent_status(patient=patient, consents=consents),
        rows=rows,
        azoospermia_confirmed=azoospermia_confirmed(records=records, visits=visits),
    )


def patient_page_record(*, patient: Patient) -> PatientRecord:
    """The patient page's record: patient_record, closed when the patient's stage says so
    (`patient` from patient_detail_queryset), with what the apps above add to the matrix
    (patients.hooks record annotators: visit status, queries, SDV, signatures)."""
    record = patient_record(patient=patient)
    record.closed = patient.stage in Stage.CLOSED
    hooks.annotate_record(record)
    return record


def azoospermia_confirmed(*, records: dict, visits: list[Visit]) -> bool | None:
    """True when the 3 screening analyses found no sperm in the centrifuged pellet; None
    while fewer than 3 are entered."""
    screening = [v for v in visits if v.definition.kind == VisitDefinition.Kind.SCREENING]
    analyses = [
        r
        for (visit_id, code, _), r in records.items()
        if code == "semen_analysis" and any(v.pk == visit_id for v in screening)
    ]
    if len(analyses) < 3:
        return None
    return all(a.no_sperm and a.pellet_examined == "Y" for a in analyses)


# ---- one CRF slot ----------------------------------------------------------------------------


class NoSuchSlot(Exception):
    """The form code is not registered, or the visit does not hold this form and number."""


def expected_repeat(*, visit: Visit, code: str) -> int:
    """How many of form `code` the visit expects (0 = not part of this visit)."""
    for form_code, repeat in visit.definition.expected_forms:
        if form_code == code:
            return repeat
    return 0


@dataclass(frozen=True)
class CrfSlot:
    """One form of one visit as the CRF page states it for one user: the live record (None
    while the slot is empty), the consent and whether it allows entering this form, the
    signature that locks the visit, and what the user may do. The record's data queries and
    source verification are read on demand (`queries()`, `sdv()`): the page reads them, a
    save that succeeds does not."""

    patient: Patient
    visit: Visit
    definition: crf.CrfDefinition
    sequence: int
    repeat: int
    record: CrfRecord | None
    consent: ConsentStatus
    lock: object | None  # the signature that locks the visit (patients.hooks.SlotReview)
    may_enter: bool  # the user's role enters data; others only read (a POST is refused)
    may_review: bool  # the user's role raises data queries and verifies sources (monitor)

    @property
    def entry_open(self) -> bool:
        """The consent allows entering this form (the rule crf_save applies)."""
        return self.consent.allows_entry(after_withdrawal=self.definition.allowed_after_withdrawal)

    @property
    def can_edit(self) -> bool:
        return self.may_enter and self.entry_open and self.lock is None

    @property
    def can_review(self) -> bool:
        """Queries and source verification are about an entered form."""
        return self.record is not None and self.may_review

    @property
    def title(self) -> str:
        title = self.definition.title
        return f"{title} {self.sequence}" if self.repeat > 1 else title

    def instance(self) -> CrfRecord:
        """The record the form edits: the live one, or a new one that knows its visit from
        the start (a form may depend on the patient's protocol: the eligibility criteria)."""
        return self.record or self.definition.model(visit=self.visit, sequence=self.sequence)

    def reread(self) -> "CrfSlot":
        """The slot with its live record read again (entered by someone else meanwhile)."""
        record = self.definition.model.objects.get(
            visit=self.visit, sequence=self.sequence, voided_at__isnull=True
        )
        return replace(self, record=record)

    def queries(self) -> list:
        return hooks.slot_review().queries(record=self.record) if self.record else []

    def sdv(self) -> object | None:
        return hooks.slot_review().sdv(record=self.record) if self.record else None


def crf_slot(*, user, patient: Patient, visit: Visit, code: str, sequence: int) -> CrfSlot:
    """Form `code` number `sequence` of `visit` (a visit of `patient`, already scoped to the
    user) for `user`: three queries (record, consent, lock). NoSuchSlot when the visit has no
    such form."""
    if not crf.is_registered(code):
        raise NoSuchSlot("Unknown form.")
    definition = crf.get(code)
    repeat = expected_repeat(visit=visit, code=code)
    if not 1 <= sequence <= repeat:
        raise NoSuchSlot("This form is not part of this visit.")
    record = definition.model.objects.filter(
        visit=visit, sequence=sequence, voided_at__isnull=True
    ).first()
    return CrfSlot(
        patient=patient,
        visit=visit,
        definition=definition,
        sequence=sequence,
        repeat=repeat,
        record=record,
        consent=consent_status(patient=patient),
        lock=hooks.slot_review().lock(visit=visit),
        may_enter=has_role(user, *DATA_ENTRY_ROLES),
        may_review=has_role(user, Role.MONITOR),
    )
