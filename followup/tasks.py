"""Background jobs of follow-up. Thin: parse the arguments, call the service."""

from datetime import date

from celery import shared_task
from django.utils import timezone

from .services import reminders_dispatch, reminders_recheck_in


# Safe to redeliver: every reminder is claimed on its own row before it is sent.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def send_visit_reminders(today: str = "", recheck: bool = True) -> dict[str, int]:
    """The daily reminder job (CELERY_BEAT_SCHEDULE). `today` (ISO date) defaults to the
    local date of the run. When another sender still holds a reminder, the job runs once
    more when that claim would count as abandoned (reminders_recheck_in); that run does not
    schedule another."""
    day = date.fromisoformat(today) if today else timezone.localdate()
    result = reminders_dispatch(today=day)
    wait = reminders_recheck_in() if recheck else None
    if wait is not None:
        send_visit_reminders.apply_async(
            args=[today], kwargs={"recheck": False}, countdown=wait.total_seconds()
        )
    return {"sent": result.sent, "failed": result.failed, "skipped": result.skipped}
