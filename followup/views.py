from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from audit.concurrency import EditConflict, record_version
from core.forms import apply_validation_error, show_current_version
from core.permissions import role_required
from core.roles import Role, has_role
from core.scoping import scoped_object_or_404
from core.submissions import Created, already_saved, create_once
from patients.models import Patient
from patients.selectors import consent_status, patient_detail_queryset

from . import services
from .forms import (
    AdverseEventForm,
    AdverseEventVoidForm,
    ConcomitantMedicationForm,
    ConcomitantMedicationVoidForm,
    UnscheduledVisitForm,
)
from .models import AdverseEvent, ConcomitantMedication, Reminder
from .selectors import (
    ScheduleFilter,
    VisitStatus,
    adverse_events,
    concomitant_medications,
    end_of_study,
    patient_outcomes,
    patient_schedule,
    procedure_day_summary,
    reminder_log,
    visits_due_list,
)

SCHEDULE_ROLES = (Role.COORDINATOR, Role.ANDROLOGIST, Role.MONITOR, Role.ADMIN)
REMINDER_LOG_ROLES = (Role.COORDINATOR, Role.MONITOR, Role.ADMIN)
# Who organises follow-up visits and records adverse events and medications; monitors read.
FOLLOWUP_ROLES = (Role.ANDROLOGIST, Role.COORDINATOR)


def _patient_for(request, patient_uuid) -> Patient:
    return scoped_object_or_404(patient_detail_queryset(), request.user, uuid=patient_uuid)


def _can_write(request, patient) -> bool:
    return (
        has_role(request.user, *FOLLOWUP_ROLES)
        and consent_status(patient=patient).allows_data_entry
    )


# ---- the coordinators' schedule and the reminder log -----------------------------------------


@role_required(*SCHEDULE_ROLES)
def schedule(request):
    """Follow-up visits at the user's sites: due this week, open, overdue, missed."""
    today = timezone.localdate()
    filters = {"site": request.GET.get("site", ""), "show": request.GET.get("show", "")}
    if filters["show"] not in dict(ScheduleFilter.CHOICES):
        filters["show"] = ScheduleFilter.ACTIONABLE
    result = visits_due_list(
        user=request.user,
        today=today,
        site_code=filters["site"],
        show=filters["show"],
        page=request.GET.get("page"),
    )
    return render(
        request,
        "followup/visit_schedule.html",
        {
            "schedule": result,
            "page": result.page,
            "querystring": urlencode(filters),
            "filters": filters,
            "show_choices": ScheduleFilter.CHOICES,
            # The site filter lists the menu's `user_sites` (dashboard.context_processors):
            # one queryset, read once for both.
            "today": today,
            "status": VisitStatus,
        },
    )


@role_required(*REMINDER_LOG_ROLES)
def reminder_list(request):
    status = request.GET.get("status", "")
    if status not in Reminder.Status.values:
        status = ""
    page = Paginator(reminder_log(user=request.user, status=status), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "followup/reminder_list.html",
        {"page": page, "status": status, "statuses": Reminder.Status.choices},
    )


# ---- one patient's follow-up -----------------------------------------------------------------


def _render_patient_followup(request, patient, unscheduled_form=None, status=200):
    today = timezone.localdate()
    events = adverse_events(patient=patient)
    medications = [m for m in concomitant_medications(patient=patient) if not m.voided_at]
    return render(
        request,
        "followup/patient_followup.html",
        {
            "medications": medications,
            "hormone_active_count": sum(1 for m in medications if m.is_hormone_active),
            "patient": patient,
            "today": today,
            "procedure": procedure_day_summary(patient=patient),
            "rows": patient_schedule(patient=patient, today=today),
            "outcomes": patient_outcomes(patient=patient),
            "ended": end_of_study(patient=patient),
            "events": events,
            "serious_count": sum(1 for e in events if e.is_serious and not e.voided_at),
            "consent": consent_status(patient=patient),
            "can_write": _can_write(request, patient),
            "unscheduled_form": unscheduled_form or UnscheduledVisitForm(),
        },
        status=status,
    )


def patient_followup(request, patient_uuid):
    """Procedure day, visit statuses, derived outcomes and adverse events of one patient."""
    return _render_patient_followup(request, _patient_for(request, patient_uuid))


@role_required(*FOLLOWUP_ROLES)
@require_POST
def visit_add_unscheduled(request, patient_uuid):
    patient = _patient_for(request, patient_uuid)
    form = UnscheduledVisitForm(request.POST)
    if form.is_valid():
        try:
            visit = services.visit_add_unscheduled(
                patient=patient, user=request.user, planned_date=form.cleaned_data["planned_date"]
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"Unscheduled visit {visit.label} added.")
            return redirect("followup:patient-followup", patient_uuid=patient.uuid)
    return _render_patient_followup(request, patient, unscheduled_form=form)


@role_required(*FOLLOWUP_ROLES)
@require_POST
def schedule_extend(request, patient_uuid):
    patient = _patient_for(request, patient_uuid)
    try:
        visit = services.schedule_extend(patient=patient, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            f"Follow-up extended: {visit.label} ({visit.definition.name}), window "
            f"{visit.window_start:%d %b %Y} to {visit.window_end:%d %b %Y}.",
        )
    return redirect("followup:patient-followup", patient_uuid=patient.uuid)


@role_required(*FOLLOWUP_ROLES)
@require_POST
def end_of_study_open(request, patient_uuid):
    patient = _patient_for(request, patient_uuid)
    try:
        visit = services.end_of_study_visit_open(patient=patient, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("followup:patient-followup", patient_uuid=patient.uuid)
    return redirect(
        reverse("patients:crf-edit", args=[patient.uuid, visit.uuid, "end_of_study", 1])
    )


# ---- the patient's logs: adverse events and concomitant medications -------------------------


@dataclass(frozen=True)
class LogPages:
    """The pages of one patient log (list, new, edit, void): one set of views for both logs;
    their templates keep their own layout and variable names."""

    log: services.PatientLog
    form: type
    void_form: type
    entries: Callable  # selector: patient -> entries
    template: str  # "followup/adverseevent" + "_list.html", "_form.html", "_void.html"
    list_url: str
    entry_name: str  # the template's name for one entry ("event")
    list_name: str  # ... and for the list ("events")
    suggestions_name: str  # ... and for the pre-listed names offered ("terms")
    suggestions: tuple
    label: str  # "Adverse event", in messages
    title_field: str  # the entry's name as reported ("term")


AE_PAGES = LogPages(
    log=services.ADVERSE_EVENTS,
    form=AdverseEventForm,
    void_form=AdverseEventVoidForm,
    entries=lambda patient: adverse_events(patient=patient),
    template="followup/adverseevent",
    list_url="followup:ae-list",
    entry_name="event",
    list_name="events",
    suggestions_name="terms",
    suggestions=AdverseEvent.SUGGESTED_TERMS,
    label="Adverse event",
    title_field="term",
)
CM_PAGES = LogPages(
    log=services.MEDICATIONS,
    form=ConcomitantMedicationForm,
    void_form=ConcomitantMedicationVoidForm,
    entries=lambda patient: concomitant_medications(patient=patient),
    template="followup/concomitantmedication",
    list_url="followup:cm-list",
    entry_name="medication",
    list_name="medications",
    suggestions_name="names",
    suggestions=ConcomitantMedication.SUGGESTED_MEDICATIONS,
    label="Medication",
    title_field="medication",
)


def _log_entry_for(pages: LogPages, patient, user, entry_uuid):
    return scoped_object_or_404(
        pages.log.model.objects.filter(patient=patient).select_related("patient"),
        user,
        uuid=entry_uuid,
    )


def _log_list(pages: LogPages, request, patient_uuid):
    patient = _patient_for(request, patient_uuid)
    return render(
        request,
        f"{pages.template}_list.html",
        {
            "patient": patient,
            pages.list_name: pages.entries(patient),
            "can_write": _can_write(request, patient),
            "consent": consent_status(patient=patient),
        },
    )


def _log_form_page(pages: LogPages, request, patient, form, entry):
    return render(
        request,
        f"{pages.template}_form.html",
        {
            "patient": patient,
            "form": form,
            pages.entry_name: entry,
            "can_write": _can_write(request, patient) and not (entry and entry.voided_at),
            "consent": consent_status(patient=patient),
            pages.suggestions_name: pages.suggestions,
        },
    )


def _log_create(pages: LogPages, request, patient_uuid):
    patient = _patient_for(request, patient_uuid)
    form = pages.form(request.POST or None)
    if request.method == "POST" and form.is_valid():

        def record() -> Created:
            entry = services.log_entry_create(
                pages.log, patient=patient, data=form.data_for_service(), user=request.user
            )
            title = getattr(entry, pages.title_field)
            url = reverse(pages.list_url, args=[patient.uuid])
            return Created(url=url, label=f"{pages.label} {entry.number} ({title})")

        try:
            result, created = create_once(
                token=form.cleaned_data.get("form_token"), user=request.user, create=record
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            if created:
                messages.success(request, f"{result.label} recorded.")
            else:
                messages.info(request, already_saved(result))
            return redirect(result.url)
    return _log_form_page(pages, request, patient, form, None)


def _log_edit(pages: LogPages, request, patient_uuid, entry_uuid):
    """Any user of the patient's site reads the entry; andrologists and coordinators edit."""
    patient = _patient_for(request, patient_uuid)
    entry = _log_entry_for(pages, patient, request.user, entry_uuid)
    if request.method == "POST" and not has_role(request.user, *FOLLOWUP_ROLES):
        raise PermissionDenied("Your role does not allow this.")
    form = pages.form(
        request.POST or None, instance=entry, initial={"loaded_version": record_version(entry)}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.log_entry_update(
                pages.log,
                entry=entry,
                data=form.data_for_service(),
                user=request.user,
                reason=form.cleaned_data["reason_for_change"],
                loaded_version=form.cleaned_data.get("loaded_version"),
            )
        except EditConflict as exc:
            show_current_version(form, exc.version)
            apply_validation_error(form, exc)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            for change in entry.changes_meanwhile:
                messages.info(request, f"Kept while you were editing: {change.describe()}.")
            messages.success(request, f"{pages.label} {entry.number} updated.")
            return redirect(pages.list_url, patient_uuid=patient.uuid)
    return _log_form_page(pages, request, patient, form, entry)


def _log_void(pages: LogPages, request, patient_uuid, entry_uuid):
    patient = _patient_for(request, patient_uuid)
    entry = _log_entry_for(pages, patient, request.user, entry_uuid)
    form = pages.void_form(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.log_entry_void(
                pages.log, entry=entry, user=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.warning(request, f"{pages.label} {entry.number} voided.")
            return redirect(pages.list_url, patient_uuid=patient.uuid)
    return render(
        request,
        f"{pages.template}_void.html",
        {"patient": patient, pages.entry_name: entry, "form": form},
    )


def adverse_event_list(request, patient_uuid):
    return _log_list(AE_PAGES, request, patient_uuid)


@role_required(*FOLLOWUP_ROLES)
@require_http_methods(["GET", "POST"])
def adverse_event_create(request, patient_uuid):
    return _log_create(AE_PAGES, request, patient_uuid)


@require_http_methods(["GET", "POST"])
def adverse_event_edit(request, patient_uuid, event_uuid):
    return _log_edit(AE_PAGES, request, patient_uuid, event_uuid)


@role_required(*FOLLOWUP_ROLES)
@require_http_methods(["GET", "POST"])
def adverse_event_void(request, patient_uuid, event_uuid):
    return _log_void(AE_PAGES, request, patient_uuid, event_uuid)


def medication_list(request, patient_uuid):
    return _log_list(CM_PAGES, request, patient_uuid)


@role_required(*FOLLOWUP_ROLES)
@require_http_methods(["GET", "POST"])
def medication_create(request, patient_uuid):
    return _log_create(CM_PAGES, request, patient_uuid)


@require_http_methods(["GET", "POST"])
def medication_edit(request, patient_uuid, medication_uuid):
    return _log_edit(CM_PAGES, request, patient_uuid, medication_uuid)


@role_required(*FOLLOWUP_ROLES)
@require_http_methods(["GET", "POST"])
def medication_void(request, patient_uuid, medication_uuid):
    return _log_void(CM_PAGES, request, patient_uuid, medication_uuid)
