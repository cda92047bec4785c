from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST
from django.views.generic import ListView

from audit.concurrency import EditConflict, entered_meanwhile, record_version
from core import crf
from core.forms import apply_validation_error, show_current_version
from core.identifiers import can_see_identity
from core.permissions import role_required
from core.roles import DATA_ENTRY_ROLES, Role, has_role
from core.scoping import SiteScopedMixin, scoped_object_or_404, site_staff
from core.submissions import Created, already_saved, create_once
from core.uploads import SizeLimitUploadHandler, scan_type
from trial.selectors import sites_for_user

from . import services
from .forms import ConsentForm, ConsentWithdrawForm, IdentityForm, PatientEnrolForm
from .hooks import panels_for
from .models import Consent, Patient
from .selectors import (
    NoSuchSlot,
    Stage,
    consent_status,
    crf_slot,
    patient_detail_queryset,
    patient_list,
    patient_page_record,
    patient_record,
)

ENROL_ROLES = (Role.ANDROLOGIST, Role.COORDINATOR)
CONSENT_ROLES = (Role.ANDROLOGIST, Role.COORDINATOR)


class PatientListView(SiteScopedMixin, ListView):
    template_name = "patients/patient_list.html"
    context_object_name = "patients"
    paginate_by = 25

    def get_queryset(self):
        params = self.request.GET
        # patient_list applies the site scope itself (Patient.objects.for_user).
        return patient_list(
            user=self.request.user,
            site_code=params.get("site", ""),
            stage=params.get("stage", ""),
            flagged=params.get("flagged") == "1",
            search=params.get("q", ""),
        )

    def paginate_queryset(self, queryset, page_size):
        """A page number out of range (an old link, a shorter filtered list) shows the last
        page instead of a 404."""
        paginator = self.get_paginator(queryset, page_size)
        page = paginator.get_page(self.request.GET.get("page"))
        return paginator, page, page.object_list, page.has_other_pages()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        params.pop("page", None)
        context.update(
            sites=sites_for_user(user=self.request.user),
            stages=Stage.CHOICES,
            stage_labels=Stage.LABELS,
            filters=self.request.GET,
            querystring=params.urlencode(),
            can_enrol=has_role(self.request.user, *ENROL_ROLES),
        )
        return context


def _patient_for(request, patient_uuid) -> Patient:
    return scoped_object_or_404(patient_detail_queryset(), request.user, uuid=patient_uuid)


@role_required(*ENROL_ROLES)
@require_http_methods(["GET", "POST"])
def patient_enrol(request):
    form = PatientEnrolForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        token = data.pop("form_token")

        def enrol() -> Created:
            patient = services.patient_enrol(user=request.user, **data)
            url = reverse("patients:patient-detail", args=[patient.uuid])
            return Created(url=url, label=f"Patient {patient.study_id}")

        try:
            result, created = create_once(token=token, user=request.user, create=enrol)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            if created:
                messages.success(request, f"{result.label} enrolled. Record the consent next.")
            else:
                messages.info(request, already_saved(result))
            return redirect(result.url)
    return render(request, "patients/patient_enrol.html", {"form": form})


def patient_detail(request, patient_uuid):
    patient = _patient_for(request, patient_uuid)
    record = patient_page_record(patient=patient)
    panels = panels_for(record)
    context = {
        "patient": patient,
        "record": record,
        "signatures": record.signatures,
        "can_sign": has_role(request.user, Role.ANDROLOGIST),
        "can_unlock": has_role(request.user, Role.ADMIN),
        "stage_label": Stage.LABELS.get(patient.stage, patient.stage),
        "can_enter_data": has_role(request.user, *DATA_ENTRY_ROLES),
        "can_record_consent": has_role(request.user, *CONSENT_ROLES),
        "show_identity": can_see_identity(user=request.user, patient=patient),
        "panels": [panel.template for panel in panels],
    }
    for panel in panels:
        context.update(panel.context)
    return render(request, "patients/patient_detail.html", context)


@require_http_methods(["GET", "POST"])
def identity_edit(request, patient_uuid):
    patient = _patient_for(request, patient_uuid)
    if not can_see_identity(user=request.user, patient=patient):
        raise PermissionDenied("Identifiers are visible to staff of the patient's site only.")
    identity = patient.identity
    form = IdentityForm(
        request.POST or None,
        instance=identity,
        initial={"loaded_version": record_version(identity)},
    )
    if request.method == "POST" and form.is_valid():
        data = {k: form.cleaned_data[k] for k in IdentityForm.Meta.fields}
        try:
            services.identity_update(
                identity=identity,
                data=data,
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
            for change in identity.changes_meanwhile:
                messages.info(request, f"Kept while you were editing: {change.describe()}.")
            messages.success(request, "Identifiers updated.")
            return redirect("patients:patient-detail", patient_uuid=patient.uuid)
    return render(request, "patients/identity_form.html", {"patient": patient, "form": form})


def consent_document(request, patient_uuid, consent_uuid):
    """The signed consent scan names the patient: site staff only, never a public media URL."""
    patient = _patient_for(request, patient_uuid)
    if not can_see_identity(user=request.user, patient=patient):
        raise PermissionDenied("The signed consent is visible to staff of the patient's site only.")
    consent = get_object_or_404(Consent, patient=patient, uuid=consent_uuid)
    if not consent.document:
        raise Http404("No document uploaded.")
    # The type comes from the bytes (files stored before the check may be anything): a PDF,
    # JPEG or PNG is shown inline in a sandbox (no script, no same origin); anything else is
    # a download the browser may not sniff into a page.
    document = consent.document.open("rb")
    scan = scan_type(document)
    name = consent.document.name.rsplit("/", 1)[-1]
    if scan:
        name = f"{name.rsplit('.', 1)[0]}{scan.extension}"
    response = FileResponse(
        document,
        as_attachment=scan is None,
        filename=name,
        content_type=scan.content_type if scan else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    if scan:
        response["Content-Security-Policy"] = "sandbox"
    return response


def _staff_of(patient):
    return site_staff(site=patient.site).order_by("last_name", "username")


@csrf_exempt  # checked by _consent_create, once the size limit is in place
@role_required(*CONSENT_ROLES)
@require_http_methods(["GET", "POST"])
def consent_create(request, patient_uuid):
    """The scan's size limit is an upload handler, put first before anything reads the body
    (CSRF middleware reads request.POST, hence csrf_exempt here and csrf_protect below, as in
    Django's docs on modifying upload handlers): a file over the limit is never spooled."""
    limit = SizeLimitUploadHandler(request, max_bytes=settings.CONSENT_UPLOAD_MAX_MB * 1024 * 1024)
    # Assigning (not insert()) raises if the body was already parsed, instead of ignoring it.
    request.upload_handlers = [limit, *request.upload_handlers]
    return _consent_create(request, patient_uuid, upload_limit=limit)


@csrf_protect
def _consent_create(request, patient_uuid, *, upload_limit):
    patient = _patient_for(request, patient_uuid)
    status = consent_status(patient=patient)
    form = ConsentForm(
        request.POST or None,
        request.FILES or None,
        patient=patient,
        obtained_by_choices=_staff_of(patient),
        initial={"consent_version": status.current_version, "obtained_by": request.user},
        upload_too_large="document" in upload_limit.refused,
    )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        token = data.pop("form_token")

        def record() -> Created:
            consent = services.consent_record(patient=patient, user=request.user, **data)
            url = reverse("patients:patient-detail", args=[patient.uuid])
            return Created(url=url, label=f"Consent version {consent.consent_version.version}")

        try:
            result, created = create_once(token=token, user=request.user, create=record)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            if created:
                messages.success(request, "Consent recorded. Data entry is open.")
            else:
                messages.info(request, already_saved(result))
            return redirect(result.url)
    return render(
        request, "patients/consent_form.html", {"patient": patient, "form": form, "status": status}
    )


@role_required(*CONSENT_ROLES)
@require_http_methods(["GET", "POST"])
def consent_withdraw(request, patient_uuid, consent_uuid):
    patient = _patient_for(request, patient_uuid)
    consent = get_object_or_404(Consent, patient=patient, uuid=consent_uuid)
    form = ConsentWithdrawForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.consent_withdraw(
                consent=consent,
                user=request.user,
                withdrawn_on=form.cleaned_data["withdrawn_on"],
                reason=form.cleaned_data["withdrawal_reason"],
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.warning(request, "Withdrawal recorded. Data entry is closed for this patient.")
            return redirect("patients:patient-detail", patient_uuid=patient.uuid)
    return render(
        request,
        "patients/consent_withdraw.html",
        {"patient": patient, "consent": consent, "form": form},
    )


def _next_missing_url(patient, visit) -> str | None:
    record = patient_record(patient=patient)
    for row in record.rows:
        if row.visit is None or row.visit.pk != visit.pk:
            continue
        for cell in row.cells:
            if cell.record is None:
                return reverse(
                    "patients:crf-edit", args=[patient.uuid, visit.uuid, cell.code, cell.sequence]
                )
    return None


@require_http_methods(["GET", "POST"])
def crf_edit(request, patient_uuid, visit_uuid, code, sequence):
    """Enter or correct one CRF of one visit: the same view serves every registered form."""
    patient = _patient_for(request, patient_uuid)
    visit = get_object_or_404(patient.visits.select_related("definition"), uuid=visit_uuid)
    try:
        slot = crf_slot(
            user=request.user, patient=patient, visit=visit, code=code, sequence=sequence
        )
    except NoSuchSlot as exc:
        raise Http404(str(exc)) from None
    form = slot.definition.form_class(
        request.POST or None,
        instance=slot.instance(),
        # A POST carries the version its page was loaded at: reading it now would be wasted.
        initial={} if request.method == "POST" else {"loaded_version": record_version(slot.record)},
    )
    if request.method == "POST":
        if not slot.may_enter:
            raise PermissionDenied("Your role cannot enter data.")
        slot, form, saved = _crf_post(request, slot, form)
        if saved is not None:
            return _crf_saved(request, slot, saved)
    return render(request, "patients/crf_form.html", _crf_page(slot, form))


def _crf_post(request, slot, form):
    """Save the posted form: (slot, form, the saved record), or None for the record when the
    form is shown again with what refused it."""
    if slot.record is not None and request.POST.get("loaded_version") == "0":
        # Loaded empty, entered by someone else since: theirs is the record now, shown
        # with the user's values over it, as a correction (it needs a reason).
        conflict = entered_meanwhile(existing=slot.record)
        form.is_valid()
        show_current_version(form, conflict.version)
        apply_validation_error(form, conflict)
        return slot, form, None
    if not form.is_valid():
        return slot, form, None
    obj = form.save(commit=False)
    obj.visit = slot.visit
    obj.sequence = slot.sequence
    try:
        services.crf_save(
            record=obj,
            user=request.user,
            reason=form.cleaned_data.get("reason_for_change", ""),
            loaded_version=form.cleaned_data.get("loaded_version"),
            consent=slot.consent,  # read by crf_slot in this request's transaction
        )
    except EditConflict as exc:
        if slot.record is None:  # the same, decided inside the save (both at once)
            slot = slot.reread()
            form = slot.definition.form_class(request.POST, instance=slot.record)
            form.is_valid()
        show_current_version(form, exc.version)
        apply_validation_error(form, exc)
    except ValidationError as exc:
        apply_validation_error(form, exc)
    else:
        return slot, form, obj
    return slot, form, None


def _crf_saved(request, slot, obj):
    """Tell what was kept and flagged, then go to the next missing form or the patient."""
    for change in obj.changes_meanwhile:
        messages.info(request, f"Kept while you were editing: {change.describe()}.")
    flags = obj.flags()
    if flags:
        messages.warning(
            request,
            f"{slot.title} saved with {len(flags)} value(s) flagged "
            f"for review: " + " ".join(flags.values()),
        )
    else:
        messages.success(request, f"{slot.title} saved.")
    if "save_next" in request.POST:
        next_url = _next_missing_url(slot.patient, slot.visit)
        if next_url:
            return redirect(next_url)
    return redirect("patients:patient-detail", patient_uuid=slot.patient.uuid)


def _crf_page(slot, form) -> dict:
    record = slot.record
    return {
        "patient": slot.patient,
        "visit": slot.visit,
        "definition": slot.definition,
        "sequence": slot.sequence,
        "repeat": slot.repeat,
        "record": record,
        "form": form,
        "flags": record.flags() if record is not None else {},
        "can_edit": slot.can_edit,
        "consent": slot.consent,
        "entry_open": slot.entry_open,
        "lock": slot.lock,
        "queries": slot.queries(),
        "can_raise_query": slot.can_review,
        "sdv": slot.sdv(),
        "can_verify": slot.can_review,
    }


@require_POST
def crf_void(request, patient_uuid, visit_uuid, code, sequence):
    """Void a form entered by mistake (never deleted; audited; the slot can be re-entered)."""
    patient = _patient_for(request, patient_uuid)
    if not has_role(request.user, *DATA_ENTRY_ROLES):
        raise PermissionDenied("Your role cannot void forms.")
    visit = get_object_or_404(patient.visits.select_related("definition"), uuid=visit_uuid)
    if not crf.is_registered(code):
        raise Http404("Unknown form.")
    record = get_object_or_404(
        crf.get(code).model, visit=visit, sequence=sequence, voided_at__isnull=True
    )
    try:
        services.crf_void(
            record=record, user=request.user, reason=request.POST.get("void_reason", "")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("patients:crf-edit", patient.uuid, visit.uuid, code, sequence)
    messages.warning(request, f"{record.crf_title} voided. It stays in the audit trail.")
    return redirect("patients:patient-detail", patient_uuid=patient.uuid)
