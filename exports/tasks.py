from celery import shared_task

from . import services


# No result is stored: the job row is the result. It also keeps the publish away from the
# result backend, which would otherwise retry for many seconds when Redis is down.
@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=services.SOFT_TIME_LIMIT,
    time_limit=services.HARD_TIME_LIMIT,
    max_retries=3,
)
def pdf_job_run(self, job_id: int) -> str:
    """Build one PDF job. Idempotent (the job is claimed first), hence acks_late: a worker
    that dies mid-build leaves the message to be delivered again."""
    outcome = services.pdf_job_build(job_id=job_id)
    if outcome == services.BuildOutcome.BUSY and self.request.retries < self.max_retries:
        # Another worker holds it: look again when it would count as abandoned (from its
        # start and its heartbeat). A holder still alive then finishes it on its own.
        raise self.retry(countdown=services.pdf_job_recheck_in(job_id=job_id))
    return str(outcome)


# Safe to redeliver: a job is expired by a conditional UPDATE and a missing file is no error.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_pdf_job_files() -> int:
    """The daily retention run (CELERY_BEAT_SCHEDULE): how many job files were deleted."""
    return services.pdf_jobs_expire()


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=55)
def sweep_pdf_jobs() -> dict[str, int]:
    """Every minute (CELERY_BEAT_SCHEDULE): send again jobs whose message was never sent or
    lost, take over jobs whose worker died (exports.services.pdf_jobs_sweep)."""
    return services.pdf_jobs_sweep()
