"""A PDF the user waits for is a row with a status the page polls (CONVENTIONS, background
work): one row per request, claimed by the Celery task with a conditional UPDATE.

The row also says where its message is (`sent_at`, `send_failed_at`: the broker may be down
when it is asked for) and who is building it (`worker`, `heartbeat_at`), so that a job whose
message was never sent, or whose worker died, is sent again or taken over, never left
queued or running for ever (exports.services)."""

from django.conf import settings
from django.db import models

from core.models import BaseModel
from core.scoping import SiteScopedManager


def pdf_job_path(instance, filename):
    return f"pdf-jobs/{instance.uuid}/{filename}"


class PdfJob(BaseModel):
    class Kind(models.TextChoices):
        FORM = "form", "One form"
        VISIT = "visit", "One visit"
        CASEBOOK = "casebook", "Patient casebook"
        SITE_CASEBOOKS = "site_casebooks", "Casebooks of a site (ZIP)"
        STUDY_CASEBOOKS = "study_casebooks", "Casebooks of the study (ZIP)"
        # The results page as a PDF (reports.exports.results_pdf): one site, or all the
        # requester's sites when `site` is empty.
        RESULTS = "results", "Results report"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Being built"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"
        # The file was deleted after PDF_JOB_RETENTION_DAYS; the row stays as a record.
        EXPIRED = "expired", "Expired"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    MULTI_PATIENT = (Kind.SITE_CASEBOOKS, Kind.STUDY_CASEBOOKS)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pdf_jobs"
    )
    # Targets: the patient (form, visit, casebook), the visit (form, visit), the form slot
    # (form), the site (the patient's site, or the site of a site ZIP; empty for the study).
    site = models.ForeignKey(
        "trial.StudySite", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pdf_jobs",
    )
    visit = models.ForeignKey(
        "patients.Visit", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    form_code = models.CharField(max_length=40, blank=True)
    form_sequence = models.PositiveSmallIntegerField(null=True, blank=True)
    # Two requests for the same thing by the same user have the same key (see constraint).
    target_key = models.CharField(max_length=200, editable=False)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to=pdf_job_path, blank=True, max_length=300)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    # The task message: when it was last handed to the broker, and when that last failed
    # (broker down; cleared by the next send that works). Queued with no `sent_at`: not sent.
    sent_at = models.DateTimeField(null=True, blank=True)
    send_failed_at = models.DateTimeField(null=True, blank=True)
    # The process building it ("host:pid") and the last sign of life of that process, bumped
    # every few seconds while it builds (PDF_JOB_HEARTBEAT_SECONDS).
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    # Site scope (core.scoping): the job's site, which is its patient's when it has one (set
    # from the patient on request; a patient never changes site). A job of the whole study
    # (no site) belongs to no site: its requester sees it (sees_unsited_rows).
    objects = SiteScopedManager()
    site_lookup = "site"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A second click while the first job is queued or running cannot add a job.
            models.UniqueConstraint(
                fields=["requested_by", "target_key"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_pdf_job_per_target",
            ),
            models.CheckConstraint(
                condition=models.Q(progress_done__lte=models.F("progress_total"))
                | models.Q(progress_total=0),
                name="pdf_job_progress_within_total",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.get_status_display()})"

    @classmethod
    def sees_unsited_rows(cls, user) -> bool:
        return True

    @property
    def is_multi_patient(self) -> bool:
        return self.kind in self.MULTI_PATIENT

    @property
    def is_waiting_for_queue(self) -> bool:
        """Saved, but its message could not be handed to the broker yet."""
        return self.status == self.Status.QUEUED and self.send_failed_at is not None

    @property
    def filename(self) -> str:
        return self.file.name.rsplit("/", 1)[-1] if self.file else ""

    def stored_file_label(self, field_name: str) -> str:
        """What the file is, in the restore check's list of files (audit.integrity)."""
        return f"file of PDF job #{self.pk} ({self.get_kind_display()})"
