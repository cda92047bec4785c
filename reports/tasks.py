from celery import shared_task

from . import services


# No result is stored: the snapshot row is the result. acks_late: a worker killed while it
# computes leaves the message to be delivered again, and the claim's stale rule lets the
# next worker take the row over (a second delivery to a live holder does nothing).
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def compute_results_snapshot(self, snapshot_id: int) -> str:
    """Compute one results snapshot (reports.services.compute_snapshot)."""
    return services.compute_snapshot(snapshot_id=snapshot_id, task_id=self.request.id or "")
