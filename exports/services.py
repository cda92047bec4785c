"""Writes for PDF jobs: request (idempotent), claim (conditional UPDATE), build, fail.

A job is built at most once: the task claims the row `queued -> running` with one UPDATE, so a
redelivered message (acks_late, worker restart) finds it claimed and builds nothing. A job
left `running` by a worker that died is taken over once it is older than the task's hard
time limit (STALE_AFTER)."""

import logging
import os
import tempfile
import zipfile
from datetime import datetime, timedelta
from enum import StrEnum

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import crf
from core.roles import RESULTS_ROLES, Role, has_role
from patients.models import Patient, Visit
from trial.models import StudySite
from trial.selectors import active_protocol

from .metadata import crf_layout
from .models import PdfJob
from .pdf import crf_document, crf_document_pdf
from .selectors import crf_content_types, patient_data, patient_data_batches

logger = logging.getLogger(__name__)

# Who may ask for CRF PDFs (issue 7): coordinators first, monitors, admins, investigators.
PDF_ROLES = (Role.COORDINATOR, Role.MONITOR, Role.ADMIN, Role.ANDROLOGIST)

# The task's limits (exports.tasks) and when a `running` job counts as abandoned.
SOFT_TIME_LIMIT = 20 * 60
HARD_TIME_LIMIT = 21 * 60
STALE_AFTER = timedelta(seconds=HARD_TIME_LIMIT + 60)

TITLES = {
    PdfJob.Kind.FORM: "Case report form",
    PdfJob.Kind.VISIT: "Visit CRFs",
    PdfJob.Kind.CASEBOOK: "Casebook",
    PdfJob.Kind.SITE_CASEBOOKS: "Casebook",
    PdfJob.Kind.STUDY_CASEBOOKS: "Casebook",
}


class BuildOutcome(StrEnum):
    BUILT = "built"
    FAILED = "failed"
    ALREADY_FINISHED = "already finished"  # a redelivery of a done or failed job: nothing to do
    BUSY = "busy"  # another worker is building it right now


# ---- request ---------------------------------------------------------------------------------


def _target_key(*, kind, patient, visit, form_code, form_sequence, site) -> str:
    parts = [kind, patient.uuid if patient else "", visit.uuid if visit else ""]
    parts += [form_code, form_sequence or "", site.uuid if site else ""]
    return ":".join(str(p) for p in parts)


PATIENT_KINDS = (PdfJob.Kind.FORM, PdfJob.Kind.VISIT, PdfJob.Kind.CASEBOOK)
VISIT_KINDS = (PdfJob.Kind.FORM, PdfJob.Kind.VISIT)


def _form_entered(*, visit: Visit, form_code: str, form_sequence: int | None) -> bool:
    if not crf.is_registered(form_code) or not form_sequence:
        return False
    return (
        crf.get(form_code)
        .model.objects.filter(visit=visit, sequence=form_sequence, voided_at__isnull=True)
        .exists()
    )


def _check_targets(*, user, kind, patient, visit, form_code, form_sequence, site) -> None:
    """The requester's role and scope, and that there is something to print."""
    if kind == PdfJob.Kind.RESULTS:
        if not has_role(user, *RESULTS_ROLES):
            raise PermissionDenied("Your role cannot see the results.")
    elif not has_role(user, *PDF_ROLES):
        raise PermissionDenied("Your role cannot request CRF PDFs.")
    patients = Patient.objects.for_user(user)
    if kind in PATIENT_KINDS and (patient is None or not patients.filter(pk=patient.pk).exists()):
        raise PermissionDenied("This patient is not at your sites.")
    if kind in VISIT_KINDS and (visit is None or visit.patient_id != patient.pk):
        raise ValidationError("Choose one of this patient's visits.")
    if kind == PdfJob.Kind.FORM and not _form_entered(
        visit=visit, form_code=form_code, form_sequence=form_sequence
    ):
        title = crf.get(form_code).title if crf.is_registered(form_code) else "This form"
        raise ValidationError(
            f"{title} has not been entered at visit {visit.label}: there is nothing to print yet."
        )
    sites = StudySite.objects.for_user(user)
    if kind == PdfJob.Kind.SITE_CASEBOOKS and site is None:
        raise PermissionDenied("This site is not one of yours.")
    # A site named (a site ZIP, the results of one site) must be one of the requester's.
    if site is not None and not sites.filter(pk=site.pk).exists():
        raise PermissionDenied("This site is not one of yours.")


def pdf_job_request(
    *,
    user,
    kind: str,
    patient: Patient | None = None,
    visit: Visit | None = None,
    form_code: str = "",
    form_sequence: int | None = None,
    site: StudySite | None = None,
) -> tuple[PdfJob, bool]:
    """Queue a PDF job, or return the identical job this user already has queued or running
    (a second click, a refresh). Returns (job, created). The task is sent after commit."""
    _check_targets(
        user=user,
        kind=kind,
        patient=patient,
        visit=visit,
        form_code=form_code,
        form_sequence=form_sequence,
        site=site,
    )
    if patient is not None:
        site = patient.site
    key = _target_key(
        kind=kind,
        patient=patient,
        visit=visit,
        form_code=form_code,
        form_sequence=form_sequence,
        site=site,
    )
    active = PdfJob.objects.filter(requested_by=user, target_key=key, status__in=PdfJob.ACTIVE)
    existing = active.first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            job = PdfJob.objects.create(
                kind=kind,
                requested_by=user,
                created_by=user,
                updated_by=user,
                patient=patient,
                visit=visit,
                form_code=form_code,
                form_sequence=form_sequence,
                site=site,
                target_key=key,
            )
    except IntegrityError:  # the same click, a few milliseconds earlier
        return active.get(), False
    from .tasks import pdf_job_run

    transaction.on_commit(lambda: pdf_job_run.delay(job.pk))
    return job, True


# ---- build -----------------------------------------------------------------------------------


def pdf_job_claim(*, job_id: int) -> bool:
    """Take the job for this worker: queued, or running but abandoned. One UPDATE decides."""
    now = timezone.now()
    claimable = Q(status=PdfJob.Status.QUEUED) | Q(
        status=PdfJob.Status.RUNNING, started_at__lt=now - STALE_AFTER
    )
    claimed = (
        PdfJob.objects.filter(claimable, pk=job_id).update(
            status=PdfJob.Status.RUNNING,
            started_at=now,
            attempts=F("attempts") + 1,
            progress_done=0,
            error="",
            updated_at=now,
        )
        == 1
    )
    return claimed


def pdf_job_progress(*, job: PdfJob, done: int) -> None:
    PdfJob.objects.filter(pk=job.pk, status=PdfJob.Status.RUNNING).update(
        progress_done=done, updated_at=timezone.now()
    )


def pdf_job_fail(*, job: PdfJob, message: str) -> None:
    PdfJob.objects.filter(pk=job.pk, status=PdfJob.Status.RUNNING).update(
        status=PdfJob.Status.FAILED, error=message, finished_at=timezone.now()
    )


def _stamp(job: PdfJob) -> str:
    return job.started_at.strftime("%Y%m%dT%H%MZ")


def _patient_pdf(*, job: PdfJob, data, layouts, model_codes) -> bytes:
    form = (job.form_code, job.form_sequence) if job.kind == PdfJob.Kind.FORM else None
    document = crf_document(
        data=data,
        layouts=layouts,
        model_codes=model_codes,
        title=TITLES[job.kind],
        generated_by=job.requested_by,
        generated_at=job.started_at,
        visit_id=job.visit_id if job.kind in VISIT_KINDS else None,
        form=form,
    )
    return crf_document_pdf(document)


def _filename(job: PdfJob) -> str:
    protocol = job.site.protocol if job.site else active_protocol()
    registry = protocol.registry_id if protocol else "study"
    if job.kind == PdfJob.Kind.FORM:
        what = f"{job.patient.study_id}_{job.visit.label}_{job.form_code}-{job.form_sequence}"
    elif job.kind == PdfJob.Kind.VISIT:
        what = f"{job.patient.study_id}_{job.visit.label}"
    elif job.kind == PdfJob.Kind.CASEBOOK:
        what = f"{job.patient.study_id}_casebook"
    elif job.kind == PdfJob.Kind.SITE_CASEBOOKS:
        what = f"{job.site.code}_casebooks"
    else:
        what = "casebooks"
    extension = "zip" if job.is_multi_patient else "pdf"
    return f"{registry}_{what}_{_stamp(job)}.{extension}".replace(" ", "-")


def _scoped_patients(job: PdfJob):
    """The patients the requester may see now: scope is applied again at build time."""
    patients = Patient.objects.for_user(job.requested_by)
    if job.patient_id:
        return patients.filter(pk=job.patient_id)
    if job.site_id:
        return patients.filter(site_id=job.site_id)
    return patients


def _build_single(job: PdfJob, layouts, model_codes) -> None:
    patient = _scoped_patients(job).first()
    if patient is None:
        raise PermissionDenied("The patient is no longer at your sites.")
    data = patient_data(patient=patient)
    content = _patient_pdf(job=job, data=data, layouts=layouts, model_codes=model_codes)
    job.file.save(_filename(job), ContentFile(content), save=False)


def _build_zip(job: PdfJob, layouts, model_codes) -> None:
    patients = _scoped_patients(job)
    total = patients.count()
    if not total:
        raise PermissionDenied("There is no patient at your sites to put in the casebooks.")
    PdfJob.objects.filter(pk=job.pk).update(progress_total=total, progress_done=0)
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for done, data in enumerate(patient_data_batches(patients=patients), start=1):
                content = _patient_pdf(job=job, data=data, layouts=layouts, model_codes=model_codes)
                archive.writestr(f"{data.patient.study_id}_casebook.pdf", content)
                pdf_job_progress(job=job, done=done)
        handle.seek(0)
        job.file.save(_filename(job), File(handle), save=False)


def _build_results(job: PdfJob) -> None:
    """The results page as a PDF, computed now with the requester's current role and sites."""
    # reports sits above exports (INSTALLED_APPS order): imported where a report is built.
    from reports.exports import results_filename, results_pdf
    from reports.selectors import study_results

    user = job.requested_by
    if not has_role(user, *RESULTS_ROLES):
        raise PermissionDenied("Your role no longer allows you to see the results.")
    if job.site_id and not StudySite.objects.for_user(user).filter(pk=job.site_id).exists():
        raise PermissionDenied(f"Site {job.site.code} is no longer one of yours.")
    # Without a site code study_results covers all the user's sites, as the page does.
    results = study_results(user=user, site_code=job.site.code if job.site_id else "")
    name = results_filename(
        results=results, extension="pdf", day=timezone.localdate(job.started_at)
    )
    job.file.save(name, ContentFile(results_pdf(results=results, user=user)), save=False)


def pdf_job_build(*, job_id: int) -> BuildOutcome:
    """Claim and build one job; a failure is recorded on the job with a message the user
    can act on (the page shows it), never lost in a worker log."""
    if not pdf_job_claim(job_id=job_id):
        status = PdfJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
        if status == PdfJob.Status.RUNNING:
            return BuildOutcome.BUSY
        return BuildOutcome.ALREADY_FINISHED
    job = PdfJob.objects.select_related(
        "requested_by", "patient__site__protocol", "site__protocol", "visit__definition"
    ).get(pk=job_id)
    try:
        if job.kind == PdfJob.Kind.RESULTS:
            _build_results(job)
        else:
            layouts = {d.code: crf_layout(d.code) for d in crf.all_definitions()}
            model_codes = crf_content_types()
            if job.is_multi_patient:
                _build_zip(job, layouts, model_codes)
            else:
                _build_single(job, layouts, model_codes)
    except SoftTimeLimitExceeded:
        pdf_job_fail(
            job=job,
            message=f"Building took longer than {SOFT_TIME_LIMIT // 60} minutes and was "
            "stopped. Ask for a smaller set (one site) or try again later.",
        )
        return BuildOutcome.FAILED
    except PermissionDenied as exc:
        pdf_job_fail(job=job, message=str(exc))
        return BuildOutcome.FAILED
    except Exception:
        logger.exception("PDF job %s failed", job.pk)
        pdf_job_fail(
            job=job,
            message="The PDF could not be built because of an error in the system. "
            "Ask again; if it fails again, tell the data manager (job "
            f"{job.uuid}).",
        )
        return BuildOutcome.FAILED
    finished = PdfJob.objects.filter(
        pk=job.pk, status=PdfJob.Status.RUNNING, attempts=job.attempts
    ).update(
        status=PdfJob.Status.DONE,
        file=job.file.name,
        finished_at=timezone.now(),
        progress_done=F("progress_total"),
    )
    if not finished:  # taken over meanwhile as abandoned: the other build's file wins
        job.file.delete(save=False)
        return BuildOutcome.ALREADY_FINISHED
    return BuildOutcome.BUILT


# ---- retention -------------------------------------------------------------------------------


def _remove_empty_folder(storage, name: str) -> None:
    """Each job's file has its own folder (pdf_job_path): remove it too. Only a file-system
    storage has folders (Storage.path() raises NotImplementedError for the others); a folder
    that is not empty or already gone is left alone."""
    try:
        folder = os.path.dirname(storage.path(name))
    except NotImplementedError:  # e.g. an object store: nothing to remove
        return
    try:
        os.rmdir(folder)
    except OSError:
        logger.info("PDF job folder %s kept (not empty or gone)", folder)


def pdf_jobs_expire(*, now: datetime | None = None) -> int:
    """Delete the files of jobs finished more than PDF_JOB_RETENTION_DAYS ago and mark those
    jobs expired; returns how many were expired. Only `done` jobs are touched.

    The file goes first, then the row (a conditional UPDATE): a run stopped in between leaves
    a `done` job whose file is gone, which the next run finishes, never an expired job whose
    copy of the data stays on disk. A file already missing is not an error."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.PDF_JOB_RETENTION_DAYS)
    storage = PdfJob._meta.get_field("file").storage
    due = PdfJob.objects.filter(status=PdfJob.Status.DONE, finished_at__lt=cutoff)
    expired = 0
    for pk, name in due.values_list("pk", "file").order_by("pk"):
        if name:
            try:
                storage.delete(name)
            except OSError:  # one unreadable file must not keep the others
                logger.exception("Could not delete the file of PDF job %s", pk)
                continue
            _remove_empty_folder(storage, name)
        expired += PdfJob.objects.filter(pk=pk, status=PdfJob.Status.DONE).update(
            status=PdfJob.Status.EXPIRED, file="", expired_at=now, updated_at=now
        )
    return expired
