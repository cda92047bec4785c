"""The results computed by a background job and kept per data version (issue 12).

One row per computation of one scope: the set of sites the results cover and the site filter
(`scope_key`), and the analysis plan (`plan`: empty today; issue 13 makes the plan data and
puts its id and version here). A row is asked for (queued), claimed by one worker (running,
core.jobs.JobClaim), and done with its payload, or failed. At most one row per scope and plan
is queued or running (the partial unique constraint): a double click, two users, two page
views at once ask for one computation.

`data_version` (audit.version.data_version) is read by the worker as it starts: the results
describe the data as they were at that version. The page shows a done row of the current
version; an older one with a banner while a newer is computed.

The payload is JSON (reports.snapshots): plain numbers and strings, with its own format
number. Not pickle: loading a pickle runs code named by the stored bytes, and a pickle of
classes that a deploy renamed or changed no longer loads (or loads wrong); JSON of a stated
format loads the same in any release, and a row of another format is simply recomputed."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ResultsSnapshot(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Being computed"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    scope_key = models.CharField(max_length=400)
    plan = models.CharField(max_length=80, blank=True, default="")
    # The site filter of the page (None: all the sites of the scope); site_ids = the scope.
    site = models.ForeignKey(
        "trial.StudySite", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    site_ids = models.JSONField(default=list)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    requested_at = models.DateTimeField()
    requested_version = models.BigIntegerField(help_text="The data version when asked for.")
    # The claim (core.jobs.JobClaim): every claim adds an attempt (the token).
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    computed_by = models.CharField(max_length=200, blank=True, help_text="host:pid, task id")
    data_version = models.BigIntegerField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    payload_format = models.PositiveSmallIntegerField(null=True, blank=True)
    payload = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope_key", "plan"],
                condition=Q(status__in=["queued", "running"]),
                name="results_snapshot_one_active_per_scope",
            )
        ]
        indexes = [
            models.Index(
                fields=["scope_key", "plan", "status", "-data_version"],
                name="results_snapshot_newest",
            )
        ]

    def __str__(self):
        return f"results {self.scope_key} v{self.data_version} {self.status}"
