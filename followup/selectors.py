"""Reads of follow-up: visit status, the coordinators' schedule, reminders due, the
procedure-day summary and the derived outcomes (responder, first sperm, hormone change).

Visit status, one rule for every page and for the reminders:
- done: every registered form the visit expects is entered (whatever the date);
- upcoming: today is before the first day of the window;
- open: window_start <= today <= window_end (both days included);
- overdue: after window_end, until the next scheduled visit's window opens (for the last
  scheduled visit: for LAST_VISIT_OVERDUE_DAYS days);
- missed: from the day the next scheduled visit's window opens (or that grace period ends).
An unscheduled visit without a planned date is open until its forms are entered.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import crf
from labs.models import (
    BoneMarrowAspirate,
    HormoneProfile,
    Injection,
    MscPreparation,
    SemenAnalysis,
    aspiration_to_injection,
    format_duration,
)
from patients.models import Consent, Patient, Visit
from patients.selectors import PatientRecord, Stage, with_stage
from trial.models import VisitDefinition

from .models import (
    REMINDER_CLAIM,
    AdverseEvent,
    ConcomitantMedication,
    EndOfStudy,
    FollowUpVisit,
    Reminder,
)

FOLLOWUP_KINDS = (VisitDefinition.Kind.SCHEDULED, VisitDefinition.Kind.UNSCHEDULED)
LAST_VISIT_OVERDUE_DAYS = 30
DUE_SOON_DAYS = 7


class VisitStatus:
    UPCOMING = "upcoming"
    OPEN = "open"
    OVERDUE = "overdue"
    MISSED = "missed"
    DONE = "done"
    NOT_EXPECTED = "not_expected"

    LABELS = {
        UPCOMING: "Upcoming",
        OPEN: "Open (in window)",
        OVERDUE: "Overdue",
        MISSED: "Missed",
        DONE: "Done",
        NOT_EXPECTED: "Not expected",
    }
    CSS = {
        UPCOMING: "text-bg-light border",
        OPEN: "text-bg-primary",
        OVERDUE: "text-bg-warning",
        MISSED: "text-bg-danger",
        DONE: "text-bg-success",
        NOT_EXPECTED: "text-bg-light border text-muted",
    }


# ---- visit status ----------------------------------------------------------------------------


def status_on(
    *, visit: Visit, today: date, done: bool, missed_from: date | None, closed: bool = False
) -> str:
    """The status rule (module docstring), given what the caller already knows: whether the
    forms are all entered, the day the visit counts as missed (None: no later scheduled
    visit, the LAST_VISIT_OVERDUE_DAYS grace applies) and whether the patient's
    participation is closed (patients.selectors.Stage.CLOSED)."""
    status = _status_while_in_study(visit=visit, today=today, done=done, missed_from=missed_from)
    return status_once_closed(status) if closed else status


def _status_while_in_study(
    *, visit: Visit, today: date, done: bool, missed_from: date | None
) -> str:
    if done:
        return VisitStatus.DONE
    if visit.window_start is None or visit.window_end is None:
        if visit.definition.kind == VisitDefinition.Kind.UNSCHEDULED:
            return VisitStatus.OPEN
        return VisitStatus.UPCOMING
    if today < visit.window_start:
        return VisitStatus.UPCOMING
    if today <= visit.window_end:
        return VisitStatus.OPEN
    if missed_from is None:
        missed_from = visit.window_end + timedelta(days=LAST_VISIT_OVERDUE_DAYS + 1)
    return VisitStatus.OVERDUE if today < missed_from else VisitStatus.MISSED


def status_once_closed(status: str) -> str:
    """The status of a visit of a patient who failed screening, withdrew or ended the study:
    no visit is expected any more, so one that was overdue is missed and one still to come is
    not expected (nothing is due, nothing to remind)."""
    if status in (VisitStatus.DONE, VisitStatus.MISSED):
        return status
    return VisitStatus.MISSED if status == VisitStatus.OVERDUE else VisitStatus.NOT_EXPECTED


def forms_entered(*, visits: QuerySet[Visit], codes: Iterable[str]) -> set[tuple[int, str, int]]:
    """{(visit id, form code, sequence)} of live records: one query per form code."""
    found: set[tuple[int, str, int]] = set()
    visit_ids = visits.order_by().values("pk")
    for code in sorted(set(codes)):
        if not crf.is_registered(code):
            continue
        model = crf.get(code).model
        rows = model.objects.filter(visit__in=visit_ids, voided_at__isnull=True).values_list(
            "visit_id", "sequence"
        )
        found.update((visit_id, code, sequence) for visit_id, sequence in rows)
    return found


def visit_is_done(*, visit: Visit, entered: set[tuple[int, str, int]]) -> bool:
    expected = [(c, n) for c, n in visit.definition.expected_forms if crf.is_registered(c)]
    return bool(expected) and all(
        (visit.pk, code, seq) in entered for code, n in expected for seq in range(1, n + 1)
    )


def _missed_from(*, visit: Visit, later_scheduled: list[Visit]) -> date | None:
    """The first day `visit` counts as missed: the next scheduled visit's window opening."""
    if visit.window_end is None:
        return None
    starts = [
        v.window_start
        for v in later_scheduled
        if v.pk != visit.pk
        and v.window_start is not None
        and v.target_date is not None
        and visit.target_date is not None
        and v.target_date > visit.target_date
    ]
    if not starts:
        return None
    return max(min(starts), visit.window_end + timedelta(days=1))


def visit_status(*, visit: Visit, today: date) -> str:
    """The status of one visit (a few queries); lists use `schedule_rows`."""
    entered = forms_entered(
        visits=Visit.objects.filter(pk=visit.pk),
        codes=[c for c, _ in visit.definition.expected_forms],
    )
    later = list(
        Visit.objects.filter(
            patient_id=visit.patient_id,
            definition__kind=VisitDefinition.Kind.SCHEDULED,
            target_date__isnull=False,
        )
    )
    return status_on(
        visit=visit,
        today=today,
        done=visit_is_done(visit=visit, entered=entered),
        missed_from=_missed_from(visit=visit, later_scheduled=later),
    )


def visit_statuses(
    *, visits: list[Visit], done: dict[int, bool], today: date, closed: bool = False
) -> dict[int, str]:
    """Statuses of one patient's visits from what a page already loaded (no query)."""
    scheduled = [v for v in visits if v.definition.kind == VisitDefinition.Kind.SCHEDULED]
    return {
        v.pk: status_on(
            visit=v,
            today=today,
            done=done[v.pk],
            missed_from=_missed_from(visit=v, later_scheduled=scheduled),
            closed=closed,
        )
        for v in visits
    }


def annotate_visit_statuses(*, record: PatientRecord) -> None:
    """Record annotator (patients.hooks) of the patient page: each visit row with data
    expected gets its status badge (due, overdue, missed...) from the data the matrix already
    holds; a missed or no longer expected visit is not what is due next (`awaited`)."""
    rows = [r for r in record.rows if r.visit is not None and r.cells]
    statuses = visit_statuses(
        visits=[r.visit for r in rows],
        done={r.visit.pk: r.complete for r in rows},
        today=timezone.localdate(),
        closed=record.closed,
    )
    for row in rows:
        row.status = statuses[row.visit.pk]
        row.status_label = VisitStatus.LABELS[row.status]
        row.status_css = VisitStatus.CSS[row.status]
        row.awaited = row.status not in (VisitStatus.MISSED, VisitStatus.NOT_EXPECTED)


@dataclass(frozen=True)
class FormSlot:
    code: str
    title: str
    sequence: int
    entered: bool


@dataclass(frozen=True)
class ScheduleRow:
    visit: Visit
    status: str
    due_this_week: bool
    missed_from: date | None = None
    forms: tuple[FormSlot, ...] = ()

    @property
    def patient(self) -> Patient:
        return self.visit.patient

    @property
    def status_label(self) -> str:
        return VisitStatus.LABELS[self.status]

    @property
    def css(self) -> str:
        return VisitStatus.CSS[self.status]


def _sort_key(visit: Visit):
    return (visit.target_date is None, visit.target_date or date.max, visit.definition.order)


def schedule_rows(
    *, visits: QuerySet[Visit], today: date, closed: bool = False
) -> list[ScheduleRow]:
    """Status of every visit of `visits` (select_related definition), in a bounded number of
    queries: the visits, then one per form code. `visits` must hold all the scheduled
    visits of each patient it covers (a visit's grace period ends when the next opens);
    `closed`: their patient's participation is closed (lists hold active patients only)."""
    visit_list = list(visits)
    codes = {c for v in visit_list for c, _ in v.definition.expected_forms}
    entered = forms_entered(visits=visits, codes=codes)
    by_patient: dict[int, list[Visit]] = defaultdict(list)
    for v in visit_list:
        if v.definition.kind == VisitDefinition.Kind.SCHEDULED:
            by_patient[v.patient_id].append(v)
    week_end = today + timedelta(days=DUE_SOON_DAYS - 1)
    rows = []
    for v in sorted(visit_list, key=_sort_key):
        done = visit_is_done(visit=v, entered=entered)
        missed_from = _missed_from(visit=v, later_scheduled=by_patient[v.patient_id])
        status = status_on(visit=v, today=today, done=done, missed_from=missed_from, closed=closed)
        due_this_week = (
            not done and v.target_date is not None and today <= v.target_date <= week_end
        )
        forms = tuple(
            FormSlot(code, crf.get(code).title, seq, (v.pk, code, seq) in entered)
            for code, n in v.definition.expected_forms
            if crf.is_registered(code)
            for seq in range(1, n + 1)
        )
        rows.append(ScheduleRow(v, status, due_this_week, missed_from, forms))
    return rows


# ---- the coordinators' schedule --------------------------------------------------------------


def active_patient_visits(queryset: QuerySet[Visit]) -> QuerySet[Visit]:
    """Visits of patients still in follow-up: consent not withdrawn, no end of study."""
    withdrawn = Consent.objects.filter(patient=OuterRef("patient"), withdrawn_on__isnull=False)
    ended = EndOfStudy.objects.filter(visit__patient=OuterRef("patient"), voided_at__isnull=True)
    return queryset.filter(~Exists(withdrawn), ~Exists(ended))


def _followup_visits(queryset: QuerySet[Visit]) -> QuerySet[Visit]:
    return active_patient_visits(
        queryset.filter(definition__kind__in=FOLLOWUP_KINDS)
    ).select_related("patient", "patient__site", "patient__site__protocol", "definition")


class ScheduleFilter:
    ACTIONABLE = ""
    WEEK = "week"
    CHOICES = [
        (ACTIONABLE, "Due this week, open, overdue and missed"),
        (WEEK, "Due this week"),
        (VisitStatus.OPEN, "Open"),
        (VisitStatus.OVERDUE, "Overdue"),
        (VisitStatus.MISSED, "Missed"),
        (VisitStatus.UPCOMING, "Upcoming"),
        (VisitStatus.DONE, "Done"),
    ]
    ACTIONABLE_STATUSES = (VisitStatus.OPEN, VisitStatus.OVERDUE, VisitStatus.MISSED)


SCHEDULE_PAGE_SIZE = 50


@dataclass
class Schedule:
    rows: list[ScheduleRow]
    counts: dict[str, int] = field(default_factory=dict)
    # The page of `rows` (django.core.paginator.Page): the list is paginated in the database.
    page: Page | None = None


class _CountedPaginator(Paginator):
    """A paginator told its count (read with the schedule's counts, in the same aggregate)."""

    def __init__(self, object_list, per_page, *, count: int):
        super().__init__(object_list, per_page)
        self._count = count

    @property
    def count(self) -> int:
        return self._count


def _done_q() -> Q:
    """The visit's registered expected forms are all entered (visit_is_done, in SQL): one
    EXISTS per expected (form, number), grouped by the follow-up visit definitions."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for definition in VisitDefinition.objects.filter(kind__in=FOLLOWUP_KINDS).order_by("pk"):
        expected = tuple(
            (code, seq)
            for code, n in definition.expected_forms
            if crf.is_registered(code)
            for seq in range(1, n + 1)
        )
        if expected:
            groups[expected].append(definition.pk)
    done = Q(pk__in=[])
    for expected, definition_ids in groups.items():
        entered = Q(definition_id__in=definition_ids)
        for code, seq in expected:
            rows = crf.get(code).model.objects.filter(
                visit=OuterRef("pk"), sequence=seq, voided_at__isnull=True
            )
            entered &= Q(Exists(rows))
        done |= entered
    return done


def with_schedule_status(visits: QuerySet[Visit], *, today: date) -> QuerySet[Visit]:
    """Annotate follow-up visits of active patients with `schedule_status` and `due_week`:
    the status rule (status_on, closed=False) and "due this week" of schedule_rows, in SQL,
    so that the schedule is counted, filtered and paginated by the database. Also
    `next_window_start` (the next scheduled visit's window opening: _missed_from)."""
    later = (
        Visit.objects.filter(
            patient=OuterRef("patient"),
            definition__kind=VisitDefinition.Kind.SCHEDULED,
            window_start__isnull=False,
            target_date__isnull=False,
            target_date__gt=OuterRef("target_date"),
        )
        .exclude(pk=OuterRef("pk"))
        .order_by("window_start")
        .values("window_start")[:1]
    )
    # today < missed_from = max(next window start, window end + 1 day) once the window has
    # closed (window_end < today) is: today < next window start; with no later visit it is
    # today < window_end + LAST_VISIT_OVERDUE_DAYS + 1.
    grace_from = today - timedelta(days=LAST_VISIT_OVERDUE_DAYS)
    S = VisitStatus
    status = Case(
        When(done=True, then=Value(S.DONE)),
        When(
            Q(window_start__isnull=True) | Q(window_end__isnull=True),
            then=Case(
                When(definition__kind=VisitDefinition.Kind.UNSCHEDULED, then=Value(S.OPEN)),
                default=Value(S.UPCOMING),
            ),
        ),
        When(window_start__gt=today, then=Value(S.UPCOMING)),
        When(window_end__gte=today, then=Value(S.OPEN)),
        # NULL (no later visit) falls through to the grace period: the subquery runs once.
        When(
            Coalesce(
                ExpressionWrapper(Q(next_window_start__gt=today), output_field=BooleanField()),
                ExpressionWrapper(Q(window_end__gte=grace_from), output_field=BooleanField()),
            ),
            then=Value(S.OVERDUE),
        ),
        default=Value(S.MISSED),
        output_field=CharField(),
    )
    week_end = today + timedelta(days=DUE_SOON_DAYS - 1)
    return visits.annotate(
        done=Case(When(_done_q(), then=Value(True)), default=Value(False)),
        next_window_start=Subquery(later),
    ).annotate(
        schedule_status=status,
        due_week=Case(
            When(done=False, target_date__gte=today, target_date__lte=week_end, then=True),
            default=Value(False),
        ),
    )


def _shown_q(show: str) -> Q:
    """Which rows the `show` filter keeps, on with_schedule_status' annotations."""
    if show == ScheduleFilter.ACTIONABLE:
        return Q(due_week=True) | Q(schedule_status__in=ScheduleFilter.ACTIONABLE_STATUSES)
    if show == ScheduleFilter.WEEK:
        return Q(due_week=True)
    return Q(schedule_status=show)


def _schedule_visits(*, user, today: date, site_code: str) -> QuerySet[Visit]:
    visits = _followup_visits(Visit.objects.for_user(user))
    if site_code:
        visits = visits.filter(patient__site__code=site_code)
    return with_schedule_status(visits, today=today)


def _grouped(visits: QuerySet[Visit]) -> list[tuple[str, bool, int]]:
    """(status, due this week, number of visits): one GROUP BY, each visit's status computed
    once (a COUNT FILTER per figure would compute it once per figure)."""
    return list(
        visits.order_by()
        .values_list("schedule_status", "due_week")
        .annotate(n=Count("pk"))
        .values_list("schedule_status", "due_week", "n")
    )


def _counts(groups: list[tuple[str, bool, int]]) -> dict[str, int]:
    return {
        ScheduleFilter.WEEK: sum(n for _, week, n in groups if week),
        **{
            s: sum(n for status, _, n in groups if status == s)
            for s in ScheduleFilter.ACTIONABLE_STATUSES
        },
    }


def _shown(status: str, week: bool, show: str) -> bool:
    """The `show` filter on one group (_shown_q's rule, for the count)."""
    if show == ScheduleFilter.ACTIONABLE:
        return bool(week) or status in ScheduleFilter.ACTIONABLE_STATUSES
    if show == ScheduleFilter.WEEK:
        return bool(week)
    return status == show


def visits_due_list(*, user, today: date, site_code: str = "", show: str = "", page=1) -> Schedule:
    """Follow-up visits at the user's sites (patients still in follow-up), with counts of
    visits due this week (target date in the next 7 days, not done), open, overdue and
    missed: one aggregate for the counts (and the number shown), one query for the page of
    SCHEDULE_PAGE_SIZE rows, whatever the number of patients. `page`: the page number as
    typed (anything not a page number gives the first or the last page)."""
    visits = _schedule_visits(user=user, today=today, site_code=site_code)
    groups = _grouped(visits)
    shown = sum(n for status, week, n in groups if _shown(status, week, show))
    ordered = visits.filter(_shown_q(show)).order_by(
        F("target_date").asc(nulls_last=True),
        "definition__order",
        "patient__site__code",
        "patient__number",
        "sequence",
        "pk",
    )
    page_obj = _CountedPaginator(ordered, SCHEDULE_PAGE_SIZE, count=shown).get_page(page)
    rows = [
        ScheduleRow(
            v,
            v.schedule_status,
            v.due_week,
            None
            if v.window_end is None or v.next_window_start is None
            else max(v.next_window_start, v.window_end + timedelta(days=1)),
        )
        for v in page_obj.object_list
    ]
    return Schedule(rows=rows, counts=_counts(groups), page=page_obj)


def visits_due_counts(*, user, today: date) -> dict[str, int]:
    """For the home page: {"week": n, "open": n, "overdue": n, "missed": n}: one aggregate."""
    return _counts(_grouped(_schedule_visits(user=user, today=today, site_code="")))


# ---- reminders -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderDue:
    visit: Visit
    kind: str


def reminders_due(*, today: date) -> list[ReminderDue]:
    """Reminders to send today, not yet sent nor being sent (a claim abandoned by a sender
    that died is to send again: REMINDER_CLAIM): `window_opens_soon` from the
    protocol's reminder_lead_days before a window opens until it opens, `overdue` while a
    visit is overdue. Patients withdrawn or at the end of the study get none."""
    visits = _followup_visits(Visit.objects.filter(target_date__isnull=False))
    due = []
    for row in schedule_rows(visits=visits, today=today):
        visit = row.visit
        lead = visit.patient.site.protocol.reminder_lead_days
        if row.status == VisitStatus.UPCOMING and today >= visit.window_start - timedelta(
            days=lead
        ):
            due.append(ReminderDue(visit, Reminder.Kind.WINDOW_OPENS_SOON))
        elif row.status == VisitStatus.OVERDUE:
            due.append(ReminderDue(visit, Reminder.Kind.OVERDUE))
    handled = set(  # sent, or being sent by a run that is still alive
        Reminder.objects.filter(visit__in=[d.visit.pk for d in due])
        .exclude(REMINDER_CLAIM.claimable(now=timezone.now()))
        .values_list("visit_id", "kind")
    )
    return [d for d in due if (d.visit.pk, d.kind) not in handled]


def reminder_log(*, user, status: str = "") -> QuerySet[Reminder]:
    qs = Reminder.objects.for_user(user).select_related(
        "visit", "visit__patient", "visit__patient__site", "visit__definition"
    )
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-due_on", "-id")


# ---- procedure day and end of study ----------------------------------------------------------


@dataclass(frozen=True)
class ProcedureDay:
    visit: Visit | None
    aspirate: BoneMarrowAspirate | None
    preparation: MscPreparation | None
    injection: Injection | None

    @property
    def procedure_date(self) -> date | None:
        return self.injection.assessment_date if self.injection else None

    @property
    def aspiration_to_injection(self) -> timedelta | None:
        return aspiration_to_injection(aspirate=self.aspirate, injection=self.injection)

    @property
    def aspiration_to_injection_label(self) -> str:
        return format_duration(self.aspiration_to_injection)


def procedure_day_summary(*, patient: Patient) -> ProcedureDay:
    visit = (
        patient.visits.filter(definition__kind=VisitDefinition.Kind.PROCEDURE)
        .select_related("definition")
        .order_by("definition__order")
        .first()
    )

    def live(model):
        if visit is None:
            return None
        return model.objects.filter(visit=visit, voided_at__isnull=True).first()

    return ProcedureDay(visit, live(BoneMarrowAspirate), live(MscPreparation), live(Injection))


def procedure_date(*, patient: Patient) -> date | None:
    """The date of the injection (the anchor of the follow-up schedule), None before it."""
    injection = (
        Injection.objects.filter(visit__patient=patient, voided_at__isnull=True)
        .order_by("assessment_date")
        .first()
    )
    return injection.assessment_date if injection else None


def end_of_study(*, patient: Patient) -> EndOfStudy | None:
    return (
        EndOfStudy.objects.filter(visit__patient=patient, voided_at__isnull=True)
        .select_related("visit")
        .first()
    )


def patient_schedule(*, patient: Patient, today: date) -> list[ScheduleRow]:
    """The patient's procedure-day and follow-up visits with their status. `patient` carries
    its stage when it comes from patients.selectors.with_stage; a patient whose stage is closed
    is expected at no more visits."""
    stage = getattr(patient, "stage", None)
    if stage is None:
        stage = with_stage(Patient.objects.filter(pk=patient.pk)).values_list("stage", flat=True)[0]
    visits = patient.visits.filter(
        definition__kind__in=(VisitDefinition.Kind.PROCEDURE, *FOLLOWUP_KINDS)
    ).select_related("patient", "definition")
    return schedule_rows(visits=visits, today=today, closed=stage in Stage.CLOSED)


def adverse_events(*, patient: Patient) -> list[AdverseEvent]:
    return list(patient.adverse_events.order_by("number"))


def concomitant_medications(*, patient: Patient) -> list[ConcomitantMedication]:
    """The patient's medication log, voided entries included (struck out on the pages)."""
    return list(patient.concomitant_medications.order_by("number"))


def followup_period_start(*, record: FollowUpVisit) -> date | None:
    """Where "since the last visit" starts for a follow-up visit form: the date of the
    patient's previous follow-up visit form, or the procedure date for the first one (M4)."""
    patient = record.visit.patient
    previous = (
        FollowUpVisit.objects.filter(
            visit__patient=patient,
            voided_at__isnull=True,
            assessment_date__lt=record.assessment_date,
        )
        .exclude(pk=record.pk)
        .aggregate(last=Max("assessment_date"))["last"]
    )
    return previous or procedure_date(patient=patient)


def medications_in_use(
    *, patient: Patient, start: date | None, end: date
) -> list[ConcomitantMedication]:
    """Live medications of the log taken at some time from `start` (None: any time before)
    to `end`, both days included."""
    medications = patient.concomitant_medications.filter(
        voided_at__isnull=True, start_date__lte=end
    )
    if start is not None:
        medications = medications.filter(Q(ongoing=True) | Q(end_date__gte=start))
    return list(medications.order_by("number"))


# ---- derived outcomes ------------------------------------------------------------------------


def percent_change(
    *, baseline: Decimal | None, after: Decimal | None, fall: bool
) -> Decimal | None:
    """% change as the trial reports it: (baseline - after) / baseline x 100 for a hormone
    expected to fall (FSH, LH), (after - baseline) / baseline x 100 for one expected to rise
    (testosterone). None (n/a) when a value is missing or the baseline is 0."""
    if baseline is None or after is None or baseline == 0:
        return None
    difference = (baseline - after) if fall else (after - baseline)
    return (Decimal(difference) / Decimal(baseline) * 100).quantize(Decimal("0.1"))


# (field, label, unit, expected to fall)
HORMONES = (
    ("fsh", "FSH", "IU/L", True),
    ("lh", "LH", "IU/L", True),
    ("testosterone", "Total testosterone", "ng/mL", False),
)


@dataclass(frozen=True)
class HormoneChange:
    code: str
    label: str
    unit: str
    baseline: Decimal | None
    after: Decimal | None
    pct_change: Decimal | None
    formula: str


@dataclass(frozen=True)
class PatientOutcomes:
    procedure_date: date | None
    followup_analyses: int
    responder: bool
    first_sperm_date: date | None
    first_sperm_visit: str
    baseline_date: date | None
    after_date: date | None
    hormones: list[HormoneChange]
    # The last follow-up semen analysis: where a patient without sperm is censored.
    last_analysis_date: date | None = None

    @property
    def first_sperm_day(self) -> int | None:
        """Days from the procedure to the first follow-up analysis with sperm."""
        return _days_after(self.procedure_date, self.first_sperm_date)

    @property
    def last_analysis_day(self) -> int | None:
        """Days from the procedure to the last follow-up semen analysis."""
        return _days_after(self.procedure_date, self.last_analysis_date)


def _days_after(start: date | None, end: date | None) -> int | None:
    if start is None or end is None:
        return None
    return (end - start).days


@dataclass(frozen=True)
class OutcomeRecords:
    """The live records the derived outcomes of one patient are computed from."""

    procedure_date: date | None
    # Follow-up semen analyses (scheduled or unscheduled visits), by date.
    analyses: list[SemenAnalysis]
    # Screening and follow-up hormone profiles, by date.
    profiles: list[HormoneProfile]


def outcome_records_of(
    *,
    injections: Iterable = (),
    analyses: Iterable[SemenAnalysis] = (),
    profiles: Iterable[HormoneProfile] = (),
) -> OutcomeRecords:
    """One patient's OutcomeRecords from live records already loaded (with visit.definition):
    which records count, and in which order, decided here for every caller."""

    def by_date(record):
        return (record.assessment_date, record.pk)

    procedure = min((i.assessment_date for i in injections), default=None)
    followup = sorted(
        (a for a in analyses if a.visit.definition.kind in FOLLOWUP_KINDS), key=by_date
    )
    kinds = (VisitDefinition.Kind.SCREENING, *FOLLOWUP_KINDS)
    hormone_profiles = sorted(
        (p for p in profiles if p.visit.definition.kind in kinds), key=by_date
    )
    return OutcomeRecords(procedure, followup, hormone_profiles)


def outcome_records(*, patients: QuerySet[Patient]) -> dict[int, OutcomeRecords]:
    """{patient id: OutcomeRecords} for every patient of `patients` (scope it first), in 3
    queries whatever their number: injections, semen analyses, hormone profiles."""
    patient_ids = patients.order_by().values("pk")
    loaded: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for key, model in (
        ("injections", Injection),
        ("analyses", SemenAnalysis),
        ("profiles", HormoneProfile),
    ):
        rows = model.objects.filter(
            visit__patient__in=patient_ids, voided_at__isnull=True
        ).select_related("visit", "visit__definition")
        for record in rows:
            loaded[record.visit.patient_id][key].append(record)
    return {pk: outcome_records_of(**lists) for pk, lists in loaded.items()}


NO_RECORDS = OutcomeRecords(None, [], [])


def baseline_profile(*, profiles: list[HormoneProfile]) -> HormoneProfile | None:
    """The baseline: the last screening hormone profile (profiles ordered by date)."""
    return next(
        (
            p
            for p in reversed(profiles)
            if p.visit.definition.kind == VisitDefinition.Kind.SCREENING
        ),
        None,
    )


def outcomes_from(*, records: OutcomeRecords) -> PatientOutcomes:
    """The rules of the derived outcomes, in one place:
    responder = sperm seen in the ejaculate (pellet-only included) at any follow-up visit
    (scheduled or unscheduled); first sperm = the earliest such analysis; hormones = the
    screening profile (baseline) against the last follow-up profile (after therapy)."""
    analyses, profiles = records.analyses, records.profiles
    positive = [a for a in analyses if a.sperm_in_ejaculate]
    baseline = baseline_profile(profiles=profiles)
    after = next((p for p in reversed(profiles) if p.visit.definition.kind in FOLLOWUP_KINDS), None)
    hormones = []
    for code, label, unit, fall in HORMONES:
        before_value = getattr(baseline, code) if baseline else None
        after_value = getattr(after, code) if after else None
        hormones.append(
            HormoneChange(
                code,
                label,
                unit,
                before_value,
                after_value,
                percent_change(baseline=before_value, after=after_value, fall=fall),
                "(baseline - after) / baseline x 100"
                if fall
                else "(after - baseline) / baseline x 100",
            )
        )
    return PatientOutcomes(
        procedure_date=records.procedure_date,
        followup_analyses=len(analyses),
        responder=bool(positive),
        first_sperm_date=positive[0].assessment_date if positive else None,
        first_sperm_visit=positive[0].visit.label if positive else "",
        baseline_date=baseline.assessment_date if baseline else None,
        after_date=after.assessment_date if after else None,
        hormones=hormones,
        last_analysis_date=analyses[-1].assessment_date if analyses else None,
    )


def patient_outcomes(*, patient: Patient) -> PatientOutcomes:
    """The derived outcomes of one patient (3 queries). For a cohort: `outcome_records` once,
    then `outcomes_from` per patient (the same rules)."""
    records = outcome_records(patients=Patient.objects.filter(pk=patient.pk))
    return outcomes_from(records=records.get(patient.pk, NO_RECORDS))
