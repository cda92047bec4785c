from celery import shared_task

from . import services


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=services.SOFT_TIME_LIMIT,
    time_limit=services.HARD_TIME_LIMIT,
    max_retries=3,
)
def pdf_job_run(self, job_id: int) -> str:
    """Build one PDF job. Idempotent (the job is claimed first), hence acks_late: a worker
    that dies mid-build leaves the message to be delivered again."""
    outcome = services.pdf_job_build(job_id=job_id)
    if outcome == services.BuildOutcome.BUSY:
        # Another worker holds it: look again once it would count as abandoned.
        raise self.retry(countdown=services.STALE_AFTER.total_seconds())
    return str(outcome)


# Safe to redeliver: a job is expired by a conditional UPDATE and a missing file is no error.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_pdf_job_files() -> int:
    """The daily retention run (CELERY_BEAT_SCHEDULE): how many job files were deleted."""
    return services.pdf_jobs_expire()
