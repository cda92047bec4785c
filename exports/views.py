"""PDF jobs (request, progress, download), blank CRFs, and the statistician's exports.

Every patient and site comes through core.scoping (`scoped_object_or_404`, `for_user`);
files are served by these views only, never from a public media URL."""

import tempfile

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from core import crf
from core.csv import streaming_csv_response
from core.permissions import role_required
from core.roles import RESULTS_ROLES, Role, has_role
from core.scoping import scoped_object_or_404
from patients.models import Patient, Visit
from trial.models import StudySite
from trial.selectors import active_protocol, sites_for_user

from . import services
from .bundle import write_bundle
from .datasets import (
    adverse_event_rows,
    analysis_rows,
    concomitant_medication_rows,
    dictionary_rows,
)
from .datasets import (
    form_csv as form_csv_chunks,
)
from .metadata import crf_layout
from .models import PdfJob
from .odm import odm_chunks
from .pdf import blank_crf_pdf
from .selectors import pdf_jobs_for_user

# Statistician's exports (issue 7): not investigators or lab technicians.
EXPORT_ROLES = (Role.COORDINATOR, Role.MONITOR, Role.ADMIN)


def _attachment(response, filename: str):
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _stamp() -> str:
    return timezone.now().strftime("%Y%m%dT%H%MZ")


def _registry() -> str:
    protocol = active_protocol()
    return protocol.registry_id if protocol else "study"


def study_exports(request):
    """The study page: site and study casebook ZIPs, exports, blank CRFs, my PDF jobs."""
    return render(
        request,
        "exports/study_exports.html",
        {
            "protocol": active_protocol(),
            "sites": sites_for_user(user=request.user),
            "forms": crf.all_definitions(),
            "jobs": pdf_jobs_for_user(user=request.user)[:10],
            "retention_days": settings.PDF_JOB_RETENTION_DAYS,
            "can_request_pdf": has_role(request.user, *services.PDF_ROLES),
            "can_export": has_role(request.user, *EXPORT_ROLES),
        },
    )


# ---- PDF jobs --------------------------------------------------------------------------------


def _form_slot(value: str) -> tuple[str, str, int | None]:
    """ "<visit uuid>/<form code>/<number>" -> (visit uuid, form code, number)."""
    visit_uuid, _, rest = value.partition("/")
    code, _, sequence = rest.partition("/")
    return visit_uuid, code, int(sequence) if sequence.isdigit() else None


@role_required(*services.PDF_ROLES)
@require_POST
def pdf_request(request):
    """One button per kind of PDF; the page it came from is where an error is shown."""
    kind = request.POST.get("kind", "")
    # The results report is asked for on the results page (results_pdf_request).
    if kind not in PdfJob.Kind.values or kind == PdfJob.Kind.RESULTS:
        raise Http404("Unknown kind of PDF.")
    patient = visit = site = None
    form_code, form_sequence = "", None
    if kind in (PdfJob.Kind.FORM, PdfJob.Kind.VISIT, PdfJob.Kind.CASEBOOK):
        patient = scoped_object_or_404(
            Patient.objects.select_related("site"), request.user, uuid=request.POST.get("patient")
        )
        back = reverse("patients:patient-detail", args=[patient.uuid])
    else:
        back = reverse("exports:study")
    visit_uuid = request.POST.get("visit", "")
    if kind == PdfJob.Kind.FORM:
        visit_uuid, form_code, form_sequence = _form_slot(request.POST.get("slot", ""))
    if kind in (PdfJob.Kind.FORM, PdfJob.Kind.VISIT):
        try:
            visit = patient.visits.select_related("definition").get(uuid=visit_uuid)
        except (Visit.DoesNotExist, ValidationError) as exc:
            raise Http404("No such visit for this patient.") from exc
    if kind == PdfJob.Kind.SITE_CASEBOOKS:
        site = scoped_object_or_404(StudySite, request.user, uuid=request.POST.get("site"))
    try:
        job, created = services.pdf_job_request(
            user=request.user,
            kind=kind,
            patient=patient,
            visit=visit,
            form_code=form_code,
            form_sequence=form_sequence,
            site=site,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    if not created:
        messages.info(request, "This PDF was already asked for: here is its progress.")
    return redirect("exports:job-detail", job_uuid=job.uuid)


@role_required(*RESULTS_ROLES)
@require_POST
def results_pdf_request(request):
    """The PDF takes long with a large cohort: it is a PDF job, built by the worker and
    followed on the job page. `site` is the results page's filter (a site code)."""
    code = request.POST.get("site", "")
    site = scoped_object_or_404(StudySite, request.user, code=code) if code else None
    job, created = services.pdf_job_request(user=request.user, kind=PdfJob.Kind.RESULTS, site=site)
    if not created:
        messages.info(request, "This PDF was already asked for: here is its progress.")
    return redirect("exports:job-detail", job_uuid=job.uuid)


def _job_for(request, job_uuid) -> PdfJob:
    if not has_role(request.user, *services.PDF_ROLES):
        raise Http404("Not found.")
    return get_object_or_404(pdf_jobs_for_user(user=request.user), uuid=job_uuid)


def job_status_payload(job: PdfJob) -> dict:
    return {
        "status": job.status,
        "status_label": job.get_status_display(),
        "done": job.progress_done,
        "total": job.progress_total,
        "error": job.error,
        # Saved, but the broker was down when it was sent: say so (exports.services).
        "notice": services.WAITING_FOR_QUEUE_MESSAGE if job.is_waiting_for_queue else "",
        "download_url": (
            reverse("exports:job-download", args=[job.uuid])
            if job.status == PdfJob.Status.DONE
            else ""
        ),
        "filename": job.filename,
    }


@require_GET
def job_detail(request, job_uuid):
    job = _job_for(request, job_uuid)
    return render(
        request,
        "exports/pdfjob_detail.html",
        {
            "job": job,
            "payload": job_status_payload(job),
            "retention_days": settings.PDF_JOB_RETENTION_DAYS,
        },
    )


@require_GET
def job_status(request, job_uuid):
    """The small JSON the job page polls."""
    return JsonResponse(job_status_payload(_job_for(request, job_uuid)))


@require_GET
def job_download(request, job_uuid):
    job = _job_for(request, job_uuid)
    if job.status == PdfJob.Status.EXPIRED:  # an old link or bookmark: say why, offer it again
        messages.warning(request, "This file has expired and was deleted; ask for it again.")
        return redirect("exports:job-detail", job_uuid=job.uuid)
    if job.status != PdfJob.Status.DONE or not job.file:
        raise Http404("This PDF is not ready.")
    try:
        handle = job.file.open("rb")
    except FileNotFoundError:  # deleted by the retention run a moment ago
        messages.warning(request, "This file is no longer on the server; ask for it again.")
        return redirect("exports:job-detail", job_uuid=job.uuid)
    return FileResponse(handle, as_attachment=True, filename=job.filename)


@require_GET
def blank_crf(request, code):
    """The empty paper form (or, with ?annotated=1, the annotated CRF): small, built now."""
    if not crf.is_registered(code):
        raise Http404("Unknown form.")
    protocol = active_protocol()
    if protocol is None:
        raise Http404("No protocol is loaded.")
    annotated = request.GET.get("annotated") == "1"
    content = blank_crf_pdf(
        layout=crf_layout(code),
        protocol=protocol,
        annotated=annotated,
        generated_by=request.user,
        generated_at=timezone.now(),
    )
    name = f"{protocol.registry_id}_{code}_{'annotated' if annotated else 'blank'}_crf.pdf"
    return _attachment(HttpResponse(content, content_type="application/pdf"), name)


# ---- exports for the statistician (streamed) -------------------------------------------------


CSV_TYPE = "text/csv; charset=utf-8"


@role_required(*EXPORT_ROLES)
@require_GET
def form_csv(request, code):
    if not crf.is_registered(code):
        raise Http404("Unknown form.")
    # form_csv: the bytes of streaming_csv_response(form_rows(...)), written in chunks of
    # rows with the cells made text by the database (issue 12: the export near COPY's speed).
    return _attachment(
        StreamingHttpResponse(form_csv_chunks(user=request.user, code=code), content_type=CSV_TYPE),
        f"{_registry()}_{code}_{_stamp()}.csv",
    )


@role_required(*EXPORT_ROLES)
@require_GET
def analysis_csv(request):
    return streaming_csv_response(
        analysis_rows(user=request.user, protocol=active_protocol()),
        filename=f"{_registry()}_analysis_{_stamp()}.csv",
        content_type=CSV_TYPE,
    )


@role_required(*EXPORT_ROLES)
@require_GET
def adverse_events_csv(request):
    return streaming_csv_response(
        adverse_event_rows(user=request.user),
        filename=f"{_registry()}_adverse_events_{_stamp()}.csv",
        content_type=CSV_TYPE,
    )


@role_required(*EXPORT_ROLES)
@require_GET
def concomitant_medications_csv(request):
    return streaming_csv_response(
        concomitant_medication_rows(user=request.user),
        filename=f"{_registry()}_concomitant_medications_{_stamp()}.csv",
        content_type=CSV_TYPE,
    )


@role_required(*EXPORT_ROLES)
@require_GET
def dictionary_csv(request):
    return streaming_csv_response(
        dictionary_rows(protocol=active_protocol()),
        filename=f"{_registry()}_data_dictionary_{_stamp()}.csv",
        content_type=CSV_TYPE,
    )


@role_required(*EXPORT_ROLES)
@require_GET
def odm_xml(request):
    protocol = active_protocol()
    if protocol is None:
        raise Http404("No protocol is loaded.")
    response = StreamingHttpResponse(
        odm_chunks(user=request.user, protocol=protocol, now=timezone.now()),
        content_type="application/xml; charset=utf-8",
    )
    return _attachment(response, f"{protocol.registry_id}_odm_{_stamp()}.xml")


@role_required(*EXPORT_ROLES)
@require_GET
def bundle_zip(request):
    """All datasets and their manifest. Written to a temporary file that spills to disk, so a
    large study does not sit in memory, then sent."""
    protocol = active_protocol()
    if protocol is None:
        raise Http404("No protocol is loaded.")
    # FileResponse closes it once sent (and a spooled file deletes itself on close).
    archive = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    write_bundle(archive, user=request.user, protocol=protocol, now=timezone.now())
    archive.seek(0)
    return FileResponse(
        archive, as_attachment=True, filename=f"{protocol.registry_id}_datasets_{_stamp()}.zip"
    )
