"""Background jobs of follow-up. Thin: parse the arguments, call the service."""

from datetime import date

from celery import shared_task
from django.utils import timezone

from .services import reminders_dispatch


# Safe to redeliver: every reminder is claimed on its own row before it is sent.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def send_visit_reminders(today: str = "") -> dict[str, int]:
    """The daily reminder job (CELERY_BEAT_SCHEDULE). `today` (ISO date) defaults to the
    local date of the run."""
    day = date.fromisoformat(today) if today else timezone.localdate()
    result = reminders_dispatch(today=day)
    return {"sent": result.sent, "failed": result.failed, "skipped": result.skipped}
