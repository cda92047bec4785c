"""Writes of follow-up: the visit schedule (created from the procedure date, extended,
unscheduled visits), end of study, the adverse-event and concomitant-medication logs and the
visit reminders.

Every clinical write checks the consent (patients.services.ensure_data_entry_allowed) and
goes to the audit trail; changes need a reason; nothing is deleted."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.concurrency import merge_concurrent_edit
from audit.models import AuditEntry
from audit.services import app_write, audit_record_change, audited_save
from core import guards
from core.choices import NY
from core.roles import Role
from core.scoping import site_staff
from labs.models import Injection
from patients.models import CrfRecord, Patient, Visit
from patients.selectors import consent_status
from patients.services import ensure_data_entry_allowed, visit_anchor
from trial.models import StudySite, VisitDefinition

from .models import (
    REMINDER_CLAIM,
    AdverseEvent,
    ConcomitantMedication,
    FollowUpVisit,
    Reminder,
    VisitExtension,
)
from .selectors import (
    ReminderDue,
    end_of_study,
    followup_period_start,
    medications_in_use,
    procedure_date,
    reminders_due,
)

logger = logging.getLogger(__name__)


# ---- the visit schedule ----------------------------------------------------------------------


def procedure_recorded(*, record: Injection, user, created: bool) -> list[Visit]:
    """The injection CRF's on_saved hook (core.crf.on_saved, in FollowupConfig.ready()): its
    date is the procedure date."""
    return schedule_create(
        patient=record.visit.patient, procedure_date=record.assessment_date, user=user
    )


def _visit_shift(*, visit: Visit, days: int, user, reason: str) -> None:
    """Move a snapshotted window by `days` (the anchor was corrected; the window's shape,
    snapshotted at creation, is kept)."""
    delta = timedelta(days=days)
    visit.target_date += delta
    visit.window_start += delta
    visit.window_end += delta
    audited_save(visit, user=user, patient=visit.patient, reason=reason)


def _procedure_anchored(patient: Patient) -> list[Visit]:
    return list(
        patient.visits.filter(
            definition__anchor=VisitDefinition.Anchor.PROCEDURE, target_date__isnull=False
        ).select_related("definition")
    )


@transaction.atomic
def schedule_create(*, patient: Patient, procedure_date: date, user) -> list[Visit]:
    """Anchor the procedure-day visit and create the patient's scheduled follow-up visits
    (one per VisitDefinition of kind "scheduled" of the protocol, extensions excepted) with
    target date and window snapshotted from `procedure_date`. Idempotent: visits that exist
    are kept. When the procedure date is corrected, the windows already snapshotted move by
    the same number of days. Returns the visits created."""
    ensure_data_entry_allowed(patient=patient)
    protocol = patient.site.protocol
    anchored = _procedure_anchored(patient)
    procedure_visit = next(
        (v for v in anchored if v.definition.kind == VisitDefinition.Kind.PROCEDURE), None
    )
    if procedure_visit is not None:
        old_date = procedure_visit.target_date - timedelta(
            days=procedure_visit.definition.target_day or 0
        )
        shift = (procedure_date - old_date).days
        if shift:
            for visit in anchored:
                _visit_shift(
                    visit=visit,
                    days=shift,
                    user=user,
                    reason=f"Procedure date corrected from {old_date:%d %b %Y} to "
                    f"{procedure_date:%d %b %Y}.",
                )
    definitions = protocol.visits.filter(
        anchor=VisitDefinition.Anchor.PROCEDURE,
        kind__in=[VisitDefinition.Kind.PROCEDURE, VisitDefinition.Kind.SCHEDULED],
        extension__isnull=True,
        target_day__isnull=False,
    ).order_by("order")
    created = []
    for definition in definitions:
        visit = Visit.objects.filter(patient=patient, definition=definition, sequence=1).first()
        if visit is None:
            visit = Visit(patient=patient, definition=definition, sequence=1)
            audited_save(visit, user=user, patient=patient)
            created.append(visit)
        if visit.target_date is None:
            visit_anchor(visit=visit, anchor_date=procedure_date, user=user)
    return created


def _ensure_in_followup(*, patient: Patient) -> date:
    """Follow-up visits can be added once the injection is recorded, until the end of study.
    Returns the procedure date."""
    ensure_data_entry_allowed(patient=patient)
    ended = end_of_study(patient=patient)
    if ended is not None:
        raise ValidationError(
            f"The patient's participation ended on {ended.assessment_date:%d %b %Y} "
            f"({ended.get_status_display().lower()}): no visit can be added."
        )
    anchor = procedure_date(patient=patient)
    if anchor is None:
        raise ValidationError(
            "Follow-up visits start once the injection is recorded on the procedure day."
        )
    return anchor


@transaction.atomic
def visit_add_unscheduled(*, patient: Patient, user, planned_date: date | None = None) -> Visit:
    """Add an unscheduled visit (UNS 1, UNS 2...); a planned date becomes its one-day window."""
    anchor = _ensure_in_followup(patient=patient)
    definition = (
        patient.site.protocol.visits.filter(kind=VisitDefinition.Kind.UNSCHEDULED)
        .order_by("order")
        .first()
    )
    if definition is None:
        raise ValidationError("This protocol has no unscheduled visit.")
    if planned_date is not None and planned_date < anchor:
        raise ValidationError(
            {"planned_date": f"A follow-up visit cannot precede the procedure ({anchor:%d %b %Y})."}
        )
    # Lock the patient: two clicks at once cannot take the same sequence number.
    Patient.objects.select_for_update().get(pk=patient.pk)
    last = patient.visits.filter(definition=definition).aggregate(n=Max("sequence"))["n"] or 0
    visit = Visit(
        patient=patient,
        definition=definition,
        sequence=last + 1,
        target_date=planned_date,
        window_start=planned_date,
        window_end=planned_date,
    )
    visit.full_clean()
    audited_save(visit, user=user, patient=patient)
    return visit


def _extension_code(target_day: int) -> tuple[str, str]:
    if target_day % 30 == 0:
        return f"M{target_day // 30}", f"Month {target_day // 30} (extended follow-up)"
    return f"D{target_day}", f"Day {target_day} (extended follow-up)"


def _extension_definition(*, after: VisitDefinition, target_day: int, user) -> VisitDefinition:
    """The protocol's visit definition `target_day` days after the procedure, created on
    demand as a copy of `after` (same window and forms) and marked as an extension."""
    code, name = _extension_code(target_day)
    # Audited below, by the application (the database trigger need not record it again).
    with app_write():
        definition, created = VisitDefinition.objects.get_or_create(
            protocol=after.protocol,
            code=code,
            defaults={
                "name": name,
                # Same rank as the last protocol visit: pages order visits by target date within.
                "order": after.order,
                "kind": VisitDefinition.Kind.SCHEDULED,
                "anchor": VisitDefinition.Anchor.PROCEDURE,
                "target_day": target_day,
                "window_before": after.window_before,
                "window_after": after.window_after,
                "forms": after.forms,
            },
        )
    if created:
        VisitExtension.objects.create(definition=definition, created_by=user, updated_by=user)
        audit_record_change(
            instance=definition, before=None, user=user, reason="Follow-up extended."
        )
    elif definition.target_day != target_day or definition.kind != VisitDefinition.Kind.SCHEDULED:
        raise ValidationError(
            f"The protocol already has a visit {code} with another timing: the schedule "
            "cannot be extended automatically."
        )
    return definition


@transaction.atomic
def schedule_extend(*, patient: Patient, user) -> Visit:
    """Add the next follow-up visit, protocol.extension_step_days after the patient's last
    scheduled one (M12 -> M14 -> M16 with the default 60 days)."""
    anchor = _ensure_in_followup(patient=patient)
    step = patient.site.protocol.extension_step_days
    if not step:
        raise ValidationError("This protocol does not allow extending the follow-up.")
    Patient.objects.select_for_update().get(pk=patient.pk)
    last = (
        patient.visits.filter(
            definition__kind=VisitDefinition.Kind.SCHEDULED, definition__target_day__isnull=False
        )
        .select_related("definition", "definition__protocol")
        .order_by("-definition__target_day")
        .first()
    )
    if last is None:
        raise ValidationError("The patient has no scheduled follow-up visit to extend from.")
    definition = _extension_definition(
        after=last.definition, target_day=last.definition.target_day + step, user=user
    )
    visit = Visit(patient=patient, definition=definition, sequence=1)
    audited_save(visit, user=user, patient=patient)
    return visit_anchor(visit=visit, anchor_date=anchor, user=user)


@transaction.atomic
def end_of_study_visit_open(*, patient: Patient, user) -> Visit:
    """The end-of-study visit, created when the end of study is to be recorded (also after a
    withdrawal of consent: the record is closed with its reason)."""
    ensure_data_entry_allowed(patient=patient, after_withdrawal=True)
    definition = (
        patient.site.protocol.visits.filter(kind=VisitDefinition.Kind.END).order_by("order").first()
    )
    if definition is None:
        raise ValidationError("This protocol has no end-of-study visit.")
    visit = Visit.objects.filter(patient=patient, definition=definition, sequence=1).first()
    if visit is None:
        visit = Visit(patient=patient, definition=definition, sequence=1)
        audited_save(visit, user=user, patient=patient)
    return visit


# ---- adverse events --------------------------------------------------------------------------

AE_FIELDS = (
    "term",
    "location",
    "onset_date",
    "end_date",
    "ongoing",
    "ctcae_grade",
    "serious",
    *AdverseEvent.CRITERIA,
    "relation_aspiration",
    "relation_injection",
    "relation_product",
    "action_taken",
    "other_action",
    "treatment_given",
    "outcome",
)


def _check_ae_dates(*, event: AdverseEvent) -> None:
    errors = {}
    today = timezone.localdate()
    first_signed_on = consent_status(patient=event.patient).first_signed_on
    if event.onset_date and event.onset_date > today:
        errors["onset_date"] = "The onset cannot be in the future."
    elif event.onset_date and first_signed_on and event.onset_date < first_signed_on:
        errors["onset_date"] = (
            f"Adverse events are recorded from the consent onwards: the onset "
            f"({event.onset_date:%d %b %Y}) precedes the consent ({first_signed_on:%d %b %Y})."
        )
    if event.end_date and event.end_date > today:
        errors["end_date"] = "The end date cannot be in the future: tick ongoing instead."
    if errors:
        raise ValidationError(errors)


CM_FIELDS = (
    "medication",
    "indication",
    "hormone_class",
    "dose",
    "dose_unit",
    "route",
    "route_other",
    "frequency",
    "frequency_other",
    "start_date",
    "end_date",
    "ongoing",
)


def _check_cm_dates(*, medication: ConcomitantMedication) -> None:
    # No lower limit: a medication started before the consent is a prior medication.
    errors = {}
    today = timezone.localdate()
    if medication.start_date and medication.start_date > today:
        errors["start_date"] = "The start date cannot be in the future."
    if medication.end_date and medication.end_date > today:
        errors["end_date"] = "The end date cannot be in the future: tick ongoing instead."
    if errors:
        raise ValidationError(errors)


# ---- the patient's logs: one mechanism for adverse events and medications --------------------


@dataclass(frozen=True)
class PatientLog:
    """A log of the patient, not a visit form: entries numbered per patient (AESPID, CMSPID),
    changed with a reason, voided never deleted, every write audited."""

    model: type
    fields: tuple[str, ...]
    related_name: str  # Patient -> entries
    noun: str  # "adverse event"
    short: str  # "event", in the messages that name it again
    check_dates: Callable  # the log's own date rules, given the entry
    # The write guards of every CRF (casebook lock, end of study). Not for adverse events:
    # safety data is never blocked; a new event invalidates the casebook signature instead.
    guarded: bool


ADVERSE_EVENTS = PatientLog(
    model=AdverseEvent,
    fields=AE_FIELDS,
    related_name="adverse_events",
    noun="adverse event",
    short="event",
    check_dates=lambda entry: _check_ae_dates(event=entry),
    guarded=False,
)
MEDICATIONS = PatientLog(
    model=ConcomitantMedication,
    fields=CM_FIELDS,
    related_name="concomitant_medications",
    noun="medication",
    short="medication",
    check_dates=lambda entry: _check_cm_dates(medication=entry),
    guarded=True,
)


def _log_apply(log: PatientLog, entry, data: dict) -> None:
    unknown = set(data) - set(log.fields)
    if unknown:
        raise ValueError(f"Not {log.noun} fields: {', '.join(sorted(unknown))}")
    for name, value in data.items():
        setattr(entry, name, value)
    log.check_dates(entry)
    if log.guarded:
        guards.check_write(record=entry)
    entry.full_clean()


@transaction.atomic
def log_entry_create(log: PatientLog, *, patient: Patient, data: dict, user):
    """A new entry with the patient's next number; it needs a valid consent."""
    ensure_data_entry_allowed(patient=patient)
    Patient.objects.select_for_update().get(pk=patient.pk)
    last = getattr(patient, log.related_name).aggregate(n=Max("number"))["n"] or 0
    entry = log.model(patient=patient, number=last + 1)
    _log_apply(log, entry, data)
    audited_save(entry, user=user, patient=patient)
    return entry


@transaction.atomic
def log_entry_update(
    log: PatientLog,
    *,
    entry,
    data: dict,
    user,
    reason: str,
    loaded_version: int | None = None,
):
    """`loaded_version`: as crf_save (audit.concurrency); the changes kept from others are
    left on `entry.changes_meanwhile`."""
    ensure_data_entry_allowed(patient=entry.patient)
    if entry.voided_at:
        raise ValidationError(f"This {log.noun} was voided: it can no longer be changed.")
    if not reason.strip():
        raise ValidationError(
            {"reason_for_change": "Give the reason for changing data already saved."}
        )
    _log_apply(log, entry, data)
    entry.changes_meanwhile = merge_concurrent_edit(record=entry, loaded_version=loaded_version)
    if entry.changes_meanwhile:
        entry.full_clean()  # the values kept from others, with the user's, must still agree
    audited_save(entry, user=user, patient=entry.patient, reason=reason)
    return entry


@transaction.atomic
def log_entry_void(log: PatientLog, *, entry, user, reason: str):
    """An entry made in error is voided (kept, struck through), never deleted."""
    ensure_data_entry_allowed(patient=entry.patient)
    if entry.voided_at:
        raise ValidationError(f"This {log.noun} is already voided.")
    if not reason.strip():
        raise ValidationError({"reason": f"Give the reason this {log.short} is voided."})
    if log.guarded:
        guards.check_write(record=entry)
    entry.voided_at = timezone.now()
    entry.void_reason = reason
    audited_save(
        entry, user=user, patient=entry.patient, reason=reason, action=AuditEntry.Action.VOID
    )
    return entry


def adverse_event_create(*, patient: Patient, data: dict, user) -> AdverseEvent:
    return log_entry_create(ADVERSE_EVENTS, patient=patient, data=data, user=user)


def concomitant_medication_create(*, patient: Patient, data: dict, user) -> ConcomitantMedication:
    """A medication may have started before the consent (a prior medication)."""
    return log_entry_create(MEDICATIONS, patient=patient, data=data, user=user)


def followup_visit_check(*, record: FollowUpVisit) -> None:
    """Cross-form rule of the follow-up visit (core.crf `cross_form_check`, run by crf_save):
    "medications since the last visit: Yes" needs a medication of the patient's log in use
    in that period, so the log, not the Y/N, is what reaches the CM dataset."""
    if record.concomitant_medications_taken != NY.YES or record.assessment_date is None:
        return
    patient = record.visit.patient
    since = followup_period_start(record=record)
    if medications_in_use(patient=patient, start=since, end=record.assessment_date):
        return
    period = (
        f"between {since:%d %b %Y} and {record.assessment_date:%d %b %Y}"
        if since
        else f"on or before {record.assessment_date:%d %b %Y}"
    )
    raise ValidationError(
        {
            "concomitant_medications_taken": f"No medication of the patient's concomitant-"
            f"medication log was in use {period}. Record it in the log first (link above the "
            "form), then save this visit."
        }
    )


# ---- reminders -------------------------------------------------------------------------------


@dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0


def coordinator_emails(*, site: StudySite) -> list[str]:
    """E-mail addresses of the active coordinators working at `site`."""
    return sorted(
        site_staff(site=site, roles=[Role.COORDINATOR])
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )


def _reminder_message(due: ReminderDue) -> tuple[str, str]:
    visit = due.visit
    patient = visit.patient
    protocol = patient.site.protocol
    window = f"{visit.window_start:%d %b %Y} to {visit.window_end:%d %b %Y}"
    if due.kind == Reminder.Kind.WINDOW_OPENS_SOON:
        subject = (
            f"[{protocol.short_name}] {patient.study_id} {visit.label}: window opens "
            f"{visit.window_start:%d %b %Y}"
        )
        lead = f"The window of visit {visit.label} ({visit.definition.name}) opens soon."
    else:
        subject = f"[{protocol.short_name}] {patient.study_id} {visit.label} is overdue"
        lead = (
            f"Visit {visit.label} ({visit.definition.name}) is overdue: its window closed "
            f"on {visit.window_end:%d %b %Y} and its forms are not complete."
        )
    body = (
        f"{lead}\n\nPatient: {patient.study_id} (site {patient.site.code})\n"
        f"Target date: {visit.target_date:%d %b %Y}\nWindow: {window}\n\n"
        "Please arrange the visit with the patient.\n"
    )
    return subject, body


def _reminder_send(*, due: ReminderDue, today: date, recipients_by_site: dict) -> str:
    """Claim the reminder row, send, record the result. Returns the final status, or "" when
    another run holds or already sent it.

    The row is unique per visit and kind; the claim is one conditional UPDATE from a
    claimable status (pending, failed, or sending but abandoned by a sender that died:
    REMINDER_CLAIM, core.jobs) to sending, stamped with its time. Two runs at once never both
    hold it: PostgreSQL re-checks the condition of the second UPDATE once the first has
    committed, and a fresh claim no longer matches it."""
    reminder, _ = Reminder.objects.get_or_create(
        visit=due.visit, kind=due.kind, defaults={"due_on": today}
    )
    claimed_at = timezone.now()
    claimed = REMINDER_CLAIM.claim(
        pk=reminder.pk,
        now=claimed_at,
        claimed_at=claimed_at,
        attempts=F("attempts") + 1,
        due_on=today,
    )
    if not claimed:
        return ""
    site = due.visit.patient.site
    if site.pk not in recipients_by_site:
        recipients_by_site[site.pk] = coordinator_emails(site=site)
    recipients = recipients_by_site[site.pk]
    outcome = {"sent_at": None, "recipients": ", ".join(recipients), "error": ""}
    if not recipients:
        outcome["status"] = Reminder.Status.FAILED
        outcome["error"] = f"No coordinator with an e-mail address works at site {site.code}."
    else:
        subject, body = _reminder_message(due)
        try:
            send_mail(subject, body, None, recipients)
        except Exception as exc:  # any mail failure is recorded, and retried by the next run
            logger.exception("Reminder %s could not be sent", reminder.pk)
            outcome["status"] = Reminder.Status.FAILED
            outcome["error"] = str(exc)[:500]
        else:
            outcome["status"] = Reminder.Status.SENT
            outcome["sent_at"] = timezone.now()
    # Recorded only while this run still holds its claim: a sender so slow that another run
    # took the row over leaves that run's result as it is.
    REMINDER_CLAIM.held_by(pk=reminder.pk, token=claimed_at).update(
        **outcome, updated_at=timezone.now()
    )
    return outcome["status"]


def reminders_dispatch(*, today: date) -> DispatchResult:
    """Send today's visit reminders to the coordinators of each patient's site. Each
    reminder is claimed on its own row before it is sent and committed at once (no
    surrounding transaction), so running the job twice, or twice at the same time, sends
    nothing twice. A failed reminder is retried by the next run while it is still due, and
    so is one left "sending" by a sender that died, once its claim is older than
    REMINDER_SENDING_STALE_MINUTES."""
    result = DispatchResult()
    recipients_by_site: dict[int, list[str]] = {}
    for due in reminders_due(today=today):
        status = _reminder_send(due=due, today=today, recipients_by_site=recipients_by_site)
        if status == Reminder.Status.SENT:
            result.sent += 1
        elif status == Reminder.Status.FAILED:
            result.failed += 1
        else:
            result.skipped += 1
    return result


def reminders_recheck_in() -> timedelta | None:
    """When to look again for reminders another sender holds: a minute after the oldest
    claim still in progress would count as abandoned; None when no claim is in progress.
    If that sender died (its worker was killed mid-send and the job, redelivered at once,
    found the claim still fresh), the reminder is then sent that day, not at the next
    daily run."""
    now = timezone.now()
    oldest = (
        Reminder.objects.filter(status=Reminder.Status.SENDING)
        .exclude(REMINDER_CLAIM.claimable(now=now))
        .annotate(since=Coalesce("claimed_at", "updated_at"))
        .order_by("since")
        .values_list("since", flat=True)
        .first()
    )
    if oldest is None:
        return None
    return max(oldest + REMINDER_CLAIM.stale_after() - now, timedelta(0)) + timedelta(minutes=1)


def ensure_not_after_end_of_study(*, record) -> None:
    """Write guard (core.guards): once the end of study is recorded, no form or log entry may
    be dated after it (a correction of earlier data stays possible)."""
    if record.crf_code == "end_of_study":
        return
    patient = record.visit.patient if isinstance(record, CrfRecord) else record.patient
    ended = end_of_study(patient=patient)
    if ended is None:
        return
    errors = {
        name: f"The patient's participation ended on {ended.assessment_date:%d %b %Y}: no "
        "data can be dated after it."
        for name in record.dated_fields
        if getattr(record, name) and getattr(record, name) > ended.assessment_date
    }
    if errors:
        raise ValidationError(errors)
