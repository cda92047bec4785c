"""Writes for PDF jobs: request (idempotent), send, claim (conditional UPDATE), build, fail,
and the sweep that leaves no job queued or running for ever.

A job is built at most once: the task claims the row `queued -> running` with one UPDATE, so a
redelivered message (acks_late, worker restart) finds it claimed and builds nothing. Every
claim adds one to `attempts`, and the writes of a build are conditional on its own attempt,
so a build that was taken over can no longer write.

Faults, and how each ends:
* Broker down when the job is asked for: the row is committed, the publish fails within
  seconds (CELERY_BROKER_TRANSPORT_OPTIONS), `send_failed_at` says so and the job page tells
  the user. Asking again, or the sweep (every minute), sends it once the broker is back.
* Worker killed mid-build: the claim records the process ("host:pid") and a thread of that
  process writes a heartbeat. The message comes back (reject_on_worker_lost, or Redis'
  visibility timeout); a job whose process is gone from this host, or whose heartbeat is
  older than PDF_JOB_HEARTBEAT_STALE_SECONDS, is taken over; a job that ran past the time
  limit, or lost its worker MAX_ATTEMPTS times, is failed with a message instead.
* Database connection lost mid-build: the failure is written after reconnecting."""

import logging
import os
import socket
import tempfile
import threading
import time
import zipfile
from datetime import datetime, timedelta
from enum import StrEnum

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import crf
from core.jobs import JobClaim
from core.roles import RESULTS_ROLES, Role, has_role
from patients.models import Patient, Visit
from reports.exports import results_filename, results_pdf
from reports.services import current_results
from trial.models import StudySite
from trial.selectors import active_protocol

from .metadata import crf_layout
from .models import PdfJob
from .pdf import crf_document, crf_document_pdf
from .selectors import crf_content_types, patient_data, patient_data_batches

logger = logging.getLogger(__name__)

# Who may ask for CRF PDFs (issue 7): coordinators first, monitors, admins, investigators.
PDF_ROLES = (Role.COORDINATOR, Role.MONITOR, Role.ADMIN, Role.ANDROLOGIST)

# The task's limits (exports.tasks; settings PDF_JOB_TIME_LIMIT, PDF_JOB_SOFT_TIME_LIMIT).
SOFT_TIME_LIMIT = settings.PDF_JOB_SOFT_TIME_LIMIT
HARD_TIME_LIMIT = settings.PDF_JOB_TIME_LIMIT
# Builds of one job: a job whose worker died this many times is failed, not built again.
MAX_ATTEMPTS = 3
# A job neither sent nor failed to send this long after it was made: its web process died
# between the commit and the publish; the sweep sends it.
SEND_GRACE = timedelta(seconds=60)
# What a publish raises when the broker is down or hung (kombu wraps the transport's errors).
BROKER_UNREACHABLE = (BrokerOperationalError, RedisConnectionError, RedisTimeoutError, OSError)
# What Django raises when the database connection is gone (server restarted, backend killed).
DB_CONNECTION_LOST = (OperationalError, InterfaceError)
# Pauses before writing again after a lost connection: a restarting server comes back.
RECONNECT_PAUSES = (0, 1, 2, 4)

WAITING_FOR_QUEUE_MESSAGE = (
    "The job service is not reachable right now; your request is saved and will be built as "
    "soon as it is back."
)
DB_LOST_MESSAGE = (
    "The connection to the database was lost while the file was being built (the database "
    "was restarted or stopped). Nothing was changed; ask for it again."
)


def stale_after() -> timedelta:
    """A job running longer than this ran past the hard time limit: its build was killed."""
    return timedelta(seconds=settings.PDF_JOB_TIME_LIMIT + 60)


def heartbeat_stale() -> timedelta:
    return timedelta(seconds=settings.PDF_JOB_HEARTBEAT_STALE_SECONDS)


# Claimed `queued -> running`; a build whose heartbeat (or start) is older than
# PDF_JOB_HEARTBEAT_STALE_SECONDS lost its worker. Every claim adds an attempt: the token.
PDF_JOB_CLAIM = JobClaim(
    model=PdfJob,
    free=(PdfJob.Status.QUEUED,),
    held=PdfJob.Status.RUNNING,
    token="attempts",
    alive=("heartbeat_at", "started_at"),
    stale_after=heartbeat_stale,
)


def resend_after() -> timedelta:
    return timedelta(seconds=settings.PDF_JOB_RESEND_AFTER_SECONDS)


def _too_long_message() -> str:
    minutes = max(1, settings.PDF_JOB_SOFT_TIME_LIMIT // 60)
    return (
        f"Building took longer than {minutes} minute{'s' if minutes > 1 else ''} and was "
        "stopped. Ask for a smaller set (one site) or try again later."
    )


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
    (a second click, a refresh). Returns (job, created). The task is sent after commit, and
    sent again when the job was asked for before but its message never reached the broker."""
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
        # Asked again for a job whose message never reached the broker (or was lost): send it.
        if active.filter(_due_for_sending(timezone.now()), pk=existing.pk).exists():
            transaction.on_commit(lambda: pdf_job_send(job_id=existing.pk))
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
    transaction.on_commit(lambda: pdf_job_send(job_id=job.pk))
    return job, True


def _due_for_sending(now: datetime) -> Q:
    """Queued jobs whose message should be sent (again): the publish failed (broker down),
    or never happened (queued again by the sweep, or the web process died between commit
    and publish), or it was sent so long ago that the message was lost. Not a job asked for
    a moment ago, whose own publish may still be under way (a double click sends once)."""
    never_sent = Q(sent_at__isnull=True) & (
        Q(send_failed_at__isnull=False) | Q(attempts__gt=0) | Q(created_at__lt=now - SEND_GRACE)
    )
    lost = Q(sent_at__lt=now - resend_after())
    return Q(status=PdfJob.Status.QUEUED) & (never_sent | lost)


def pdf_job_send(*, job_id: int) -> bool:
    """Hand the job's message to the broker; never raises because the broker is down or hung
    (run after the commit of a request, which must not become a 500). A failure is kept on
    the job (`send_failed_at`: the job page says so) and the sweep sends it again."""
    from .tasks import pdf_job_run

    try:
        pdf_job_run.delay(job_id)
    except BROKER_UNREACHABLE:
        logger.warning("PDF job %s saved but not sent: the broker is unreachable", job_id)
        PdfJob.objects.filter(pk=job_id, status=PdfJob.Status.QUEUED).update(
            send_failed_at=timezone.now()
        )
        return False
    PdfJob.objects.filter(pk=job_id).update(sent_at=timezone.now(), send_failed_at=None)
    return True


# ---- claim, heartbeat, abandoned jobs --------------------------------------------------------


def _this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _worker_is_gone(worker: str) -> bool:
    """True only when it is certain: the worker ran on this host and no process has its pid
    any more. Another host, or a pid in use (perhaps by another program), proves nothing:
    the heartbeat decides then."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by another user
        return False
    return False


class Abandoned(StrEnum):
    WORKER_LOST = "worker lost"  # killed, or its host is gone: build it again
    TIMED_OUT = "timed out"  # it was building past the time limit: building again won't help


_RUNNING_FIELDS = ("pk", "uuid", "attempts", "worker", "started_at", "heartbeat_at")


def _abandoned(row: dict, now: datetime) -> Abandoned | None:
    """Why a `running` job (a dict of _RUNNING_FIELDS) is no longer being built, or None."""
    started = row["started_at"] or now
    beat = row["heartbeat_at"] or started
    if not (
        PDF_JOB_CLAIM.is_stale(row, now=now)
        or now - started > stale_after()
        or _worker_is_gone(row["worker"])
    ):
        return None
    # Alive past the soft limit: the limits ended it, and would end it again. Else it died.
    if beat - started >= timedelta(seconds=settings.PDF_JOB_SOFT_TIME_LIMIT):
        return Abandoned.TIMED_OUT
    return Abandoned.WORKER_LOST


def _still_held(row: dict):
    """The job as it was read: no claim happened since (every claim adds an attempt)."""
    return PDF_JOB_CLAIM.held_by(pk=row["pk"], token=row["attempts"])


def _fail_abandoned(row: dict, why: Abandoned, now: datetime) -> bool:
    """Fail an abandoned job that must not be built again; False if it may be."""
    if why == Abandoned.TIMED_OUT:
        message = _too_long_message()
    elif row["attempts"] >= MAX_ATTEMPTS:
        message = (
            f"The worker building this file stopped {row['attempts']} times before it was "
            "done. Ask again later; if it happens again, tell the data manager (job "
            f"{row['uuid']})."
        )
    else:
        return False
    logger.warning("PDF job %s failed: %s", row["pk"], why)
    _still_held(row).update(
        status=PdfJob.Status.FAILED, error=message, finished_at=now, updated_at=now
    )
    return True


def _claim_fields(now: datetime) -> dict:
    return {
        "started_at": now,
        "heartbeat_at": now,
        "worker": _this_worker(),
        "attempts": F("attempts") + 1,
        "progress_done": 0,
        "error": "",
        "updated_at": now,
    }


def pdf_job_claim(*, job_id: int) -> bool:
    """Take the job for this worker: queued, or running but abandoned (its worker is gone).
    A conditional UPDATE decides, so two workers never both get it."""
    now = timezone.now()
    if PDF_JOB_CLAIM.claim(pk=job_id, now=now, take_stale=False, **_claim_fields(now)):
        return True
    running = PdfJob.objects.filter(pk=job_id, status=PdfJob.Status.RUNNING)
    row = running.values(*_RUNNING_FIELDS).first()
    why = _abandoned(row, now) if row else None
    if why is None or _fail_abandoned(row, why, now):
        return False
    logger.warning("PDF job %s taken over (%s, was %s)", job_id, why, row["worker"] or "?")
    return PDF_JOB_CLAIM.take_over(pk=job_id, token=row["attempts"], **_claim_fields(now))


def pdf_job_recheck_in(*, job_id: int) -> float:
    """Seconds until a job another worker holds would count as abandoned (from its start and
    its last heartbeat): when a message that found it busy should look again."""
    row = PdfJob.objects.filter(pk=job_id).values("started_at", "heartbeat_at").first()
    now = timezone.now()
    if not row or not row["started_at"]:
        return 1.0
    due = min(row["started_at"] + stale_after(), PDF_JOB_CLAIM.stale_at(row))
    return max(1.0, (due - now).total_seconds() + 1)


class _Heartbeat:
    """While a job is built, a thread of the building process writes `heartbeat_at` every
    PDF_JOB_HEARTBEAT_SECONDS on its own database connection: the build's sign of life,
    also during one long render that reports no progress. It ends with the build, or with
    the process when the worker is killed."""

    def __init__(self, job: PdfJob):
        self.job_id, self.attempts = job.pk, job.attempts
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"pdf-job-{job.pk}-heartbeat", daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join(timeout=10)

    def _run(self):
        try:
            while not self.stopped.wait(settings.PDF_JOB_HEARTBEAT_SECONDS):
                try:
                    PDF_JOB_CLAIM.held_by(pk=self.job_id, token=self.attempts).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:  # reconnect at the next beat
                    logger.warning("PDF job %s: heartbeat not written", self.job_id)
                    connection.close()
        finally:
            connection.close()


def _write_reconnecting(write):
    """Run a write; when the database connection is gone, reconnect and write again (a few
    times, pausing: a restarting server takes seconds). A write on a dead connection would
    fail again and leave the job `running` for ever."""
    for pause in RECONNECT_PAUSES:
        time.sleep(pause)
        try:
            return write()
        except DB_CONNECTION_LOST:
            if pause == RECONNECT_PAUSES[-1]:
                raise
            logger.warning("Database connection lost; reconnecting to record a PDF job")
            connection.close()


def _job_of_this_build(job: PdfJob):
    """The job while this build holds it (a takeover adds an attempt)."""
    return PDF_JOB_CLAIM.held_by(pk=job.pk, token=job.attempts)


def pdf_job_progress(*, job: PdfJob, done: int) -> None:
    now = timezone.now()
    _job_of_this_build(job).update(progress_done=done, heartbeat_at=now, updated_at=now)


def pdf_job_fail(*, job: PdfJob, message: str) -> None:
    now = timezone.now()
    _write_reconnecting(
        lambda: _job_of_this_build(job).update(
            status=PdfJob.Status.FAILED, error=message, finished_at=now, updated_at=now
        )
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
    data = patient_data(patient=patient, viewer=job.requested_by)
    content = _patient_pdf(job=job, data=data, layouts=layouts, model_codes=model_codes)
    job.file.save(_filename(job), ContentFile(content), save=False)


def _build_zip(job: PdfJob, layouts, model_codes) -> None:
    patients = _scoped_patients(job)
    total = patients.count()
    if not total:
        raise PermissionDenied("There is no patient at your sites to put in the casebooks.")
    _job_of_this_build(job).update(progress_total=total, progress_done=0)
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for done, data in enumerate(
                patient_data_batches(patients=patients, viewer=job.requested_by), start=1
            ):
                content = _patient_pdf(job=job, data=data, layouts=layouts, model_codes=model_codes)
                archive.writestr(f"{data.patient.study_id}_casebook.pdf", content)
                pdf_job_progress(job=job, done=done)
        handle.seek(0)
        job.file.save(_filename(job), File(handle), save=False)


def _build_results(job: PdfJob) -> None:
    """The results page as a PDF, with the requester's current role and sites: the results
    job's computation of the current data version, or computed now if there is none."""
    user = job.requested_by
    if not has_role(user, *RESULTS_ROLES):
        raise PermissionDenied("Your role no longer allows you to see the results.")
    if job.site_id and not StudySite.objects.for_user(user).filter(pk=job.site_id).exists():
        raise PermissionDenied(f"Site {job.site.code} is no longer one of yours.")
    # Without a site code the results cover all the user's sites, as the page does.
    results = current_results(user=user, site_code=job.site.code if job.site_id else "")
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
    with _Heartbeat(job):
        return _build_and_record(job)


def _build_and_record(job: PdfJob) -> BuildOutcome:
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
        pdf_job_fail(job=job, message=_too_long_message())
        return BuildOutcome.FAILED
    except PermissionDenied as exc:
        pdf_job_fail(job=job, message=str(exc))
        return BuildOutcome.FAILED
    except DB_CONNECTION_LOST:
        logger.exception("PDF job %s: database connection lost while building", job.pk)
        connection.close()
        pdf_job_fail(job=job, message=DB_LOST_MESSAGE)
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
    try:
        finished = _write_reconnecting(
            lambda: _job_of_this_build(job).update(
                status=PdfJob.Status.DONE,
                file=job.file.name,
                finished_at=timezone.now(),
                progress_done=F("progress_total"),
            )
        )
    except DB_CONNECTION_LOST:  # not recorded: the sweep builds it again; keep no orphan file
        job.file.delete(save=False)
        raise
    if not finished:  # taken over meanwhile as abandoned: the other build's file wins
        job.file.delete(save=False)
        return BuildOutcome.ALREADY_FINISHED
    return BuildOutcome.BUILT


# ---- the sweep (CELERY_BEAT_SCHEDULE, every minute) ------------------------------------------


def pdf_jobs_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Leave no job queued or running for ever. A running job whose worker is gone is queued
    again and sent (or failed, past the time limit or MAX_ATTEMPTS); a queued job whose
    message was never sent, or sent more than PDF_JOB_RESEND_AFTER_SECONDS ago and still not
    taken, is sent again. Every write is conditional, so a sweep racing a worker is harmless
    and a duplicate message builds nothing twice. Returns counts per outcome."""
    now = now or timezone.now()
    counts = {"failed": 0, "requeued": 0, "sent": 0, "not_sent": 0}
    running = PdfJob.objects.filter(status=PdfJob.Status.RUNNING).values(*_RUNNING_FIELDS)
    for row in running.order_by("pk"):
        why = _abandoned(row, now)
        if why is None:
            continue
        if _fail_abandoned(row, why, now):
            counts["failed"] += 1
        elif _still_held(row).update(
            status=PdfJob.Status.QUEUED, worker="", sent_at=None, updated_at=now
        ):
            logger.warning("PDF job %s queued again (%s, was %s)", row["pk"], why, row["worker"])
            counts["requeued"] += 1
    due = PdfJob.objects.filter(_due_for_sending(now))
    for pk in due.order_by("pk").values_list("pk", flat=True):
        if pdf_job_send(job_id=pk):
            counts["sent"] += 1
        else:  # the broker is down: the next sweep tries again
            counts["not_sent"] = due.count()
            break
    return counts


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
