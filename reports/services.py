"""The results job (issue 12): results computed by a Celery worker and kept per data version.

The page (`results_page`) shows the stored computation of the user's exact scope when it
describes the data as they are now (its data version is the current one, audit.version);
otherwise the newest older one, with a banner, while one computation is asked for. At most
one computation per scope is queued or running (the model's partial unique constraint); the
worker claims it (core.jobs.JobClaim: queued -> running with one conditional UPDATE, or a
stale claim taken over) so a double click, two users or a message delivered twice compute
once. With CELERY_TASK_ALWAYS_EAGER (the demo, on SQLite) the computation runs inside the
request and the page shows fresh results at once."""

import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from audit.version import data_version, data_version_expression
from core.jobs import JobClaim

from . import snapshots
from .models import ResultsSnapshot
from .selectors import Results, ResultsScope, computed_results, results_scope

logger = logging.getLogger(__name__)

# What a publish raises when the broker is down or hung (as exports.services).
BROKER_UNREACHABLE = (BrokerOperationalError, RedisConnectionError, RedisTimeoutError, OSError)
# The analysis plan of a computation: one today (issue 13 puts the plan's id and version here).
DEFAULT_PLAN = ""


def stale_after() -> timedelta:
    """A running computation whose worker gave no sign of life for this long is abandoned:
    past the task's hard time limit, its worker is dead (the computation has no heartbeat:
    at 10,000 patients it takes about 20 s)."""
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


RESULTS_CLAIM = JobClaim(
    model=ResultsSnapshot,
    free=(ResultsSnapshot.Status.QUEUED,),
    held=ResultsSnapshot.Status.RUNNING,
    token="attempts",
    alive=("claimed_at",),
    stale_after=stale_after,
)
# A queued computation not claimed after this long: its message was lost (or never sent);
# the next page view sends it again (a second message is harmless: the claim decides).
RESEND_AFTER = timedelta(seconds=120)


def runs_inline() -> bool:
    """True when Celery runs tasks in the caller (CELERY_TASK_ALWAYS_EAGER, the setting Celery
    reads: the demo): the computation then runs inside the request."""
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


# ---- asking for a computation ----------------------------------------------------------------


def _send(*, snapshot_id: int) -> bool:
    """Hand the computation to the broker; never raises because the broker is down (run
    after a request's commit): the next page view sends it again."""
    from .tasks import compute_results_snapshot

    try:
        compute_results_snapshot.delay(snapshot_id)
    except BROKER_UNREACHABLE:
        logger.warning("Results computation %s not sent: the broker is unreachable", snapshot_id)
        return False
    return True


def _needs_sending_again(snapshot: ResultsSnapshot, *, now) -> bool:
    if snapshot.status == ResultsSnapshot.Status.QUEUED:
        return snapshot.requested_at < now - RESEND_AFTER
    return RESULTS_CLAIM.is_stale({"claimed_at": snapshot.claimed_at}, now=now)


def request_computation(
    *, scope: ResultsScope, user, version: int, plan: str = DEFAULT_PLAN
) -> tuple[ResultsSnapshot, bool]:
    """Ask for the results of `scope` to be computed: the computation already queued or
    running for it, or a new one. Returns (row, created). The task is sent after commit, or
    run now when Celery is eager. A computation whose message was lost or whose worker died
    is sent again (once: a conditional UPDATE of requested_at decides who sends)."""
    active = ResultsSnapshot.objects.filter(
        scope_key=scope.key, plan=plan, status__in=ResultsSnapshot.ACTIVE
    )
    existing = active.first()
    now = timezone.now()
    if existing is not None:
        if _needs_sending_again(existing, now=now) and (
            active.filter(pk=existing.pk, requested_at=existing.requested_at).update(
                requested_at=now
            )
        ):
            logger.info("Results computation %s sent again (lost or abandoned)", existing.pk)
            _dispatch(snapshot_id=existing.pk)
        return existing, False
    try:
        with transaction.atomic():
            snapshot = ResultsSnapshot.objects.create(
                scope_key=scope.key,
                plan=plan,
                site=scope.site,
                site_ids=scope.site_ids,
                requested_by=user if getattr(user, "pk", None) else None,
                requested_at=now,
                requested_version=version,
            )
    except IntegrityError:  # the same request, a moment earlier
        return active.get(), False
    _dispatch(snapshot_id=snapshot.pk)
    return snapshot, True


def _dispatch(*, snapshot_id: int) -> None:
    if runs_inline():
        compute_snapshot(snapshot_id=snapshot_id)
    else:
        transaction.on_commit(lambda: _send(snapshot_id=snapshot_id))


# ---- the computation -------------------------------------------------------------------------


class Outcome:
    DONE = "done"
    BUSY = "busy"  # claimed by another worker (or already done)
    GONE = "gone"
    FAILED = "failed"


def _this_worker(task_id: str = "") -> str:
    worker = f"{socket.gethostname()}:{os.getpid()}"
    return f"{worker} {task_id}".strip()[:200]


def _compute(site_ids: list[int]) -> tuple[int, dict]:
    """(data version, payload), read consistently: on PostgreSQL, outside a transaction,
    in one REPEATABLE READ READ ONLY transaction, so the payload is exactly the data at that
    version. Elsewhere the version is read first: the data may then be newer than their
    label, never older (the next page view merely computes again)."""
    isolated = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if isolated:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        version = data_version()
        results = computed_results(site_ids=site_ids)
        payload = snapshots.dump(**results)
    return version, payload


def compute_snapshot(*, snapshot_id: int, task_id: str = "") -> str:
    """Claim the computation (queued, or abandoned by a dead worker), compute the results of
    its scope and store them with the data version they describe. Idempotent: a second
    message for a row claimed or done by another does nothing."""
    now = timezone.now()
    row = (
        ResultsSnapshot.objects.filter(pk=snapshot_id)
        .values("attempts", "site_ids", "scope_key", "plan")
        .first()
    )
    if row is None:
        return Outcome.GONE
    attempts = row["attempts"] + 1
    if not RESULTS_CLAIM.claim(
        pk=snapshot_id,
        now=now,
        attempts=attempts,
        claimed_at=now,
        computed_by=_this_worker(task_id),
    ):
        return Outcome.BUSY
    mine = RESULTS_CLAIM.held_by(pk=snapshot_id, token=attempts)
    started = time.monotonic()
    try:
        version, payload = _compute(row["site_ids"])
    except Exception as error:
        logger.exception("Results computation %s failed", snapshot_id)
        mine.update(
            status=ResultsSnapshot.Status.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            computed_at=timezone.now(),
        )
        return Outcome.FAILED
    duration = round(1000 * (time.monotonic() - started))
    written = mine.update(
        status=ResultsSnapshot.Status.DONE,
        data_version=version,
        computed_at=timezone.now(),
        duration_ms=duration,
        payload_format=snapshots.FORMAT,
        payload=payload,
    )
    if not written:  # taken over meanwhile: the other worker's result counts
        return Outcome.BUSY
    # The store keeps the newest computation of each scope: older ones are never shown again
    # (a cache, not clinical data: nothing of the trail is lost).
    ResultsSnapshot.objects.filter(
        Q(data_version__lte=version) | Q(data_version__isnull=True),
        scope_key=row["scope_key"],
        plan=row["plan"],
        status__in=(ResultsSnapshot.Status.DONE, ResultsSnapshot.Status.FAILED),
    ).exclude(pk=snapshot_id).delete()
    logger.info(
        "Results computation %s done: data version %s in %s ms", snapshot_id, version, duration
    )
    return Outcome.DONE


# ---- reading ---------------------------------------------------------------------------------


def newest_done(*, scope_key: str, plan: str = DEFAULT_PLAN) -> ResultsSnapshot | None:
    """The newest finished computation of exactly this scope that this release can read,
    with the data version now as `current_version`: one query (index
    results_snapshot_newest)."""
    return (
        ResultsSnapshot.objects.filter(
            scope_key=scope_key,
            plan=plan,
            status=ResultsSnapshot.Status.DONE,
            payload_format=snapshots.FORMAT,
        )
        .annotate(current_version=data_version_expression())
        .order_by("-data_version", "-id")
        .first()
    )


def _stored_and_version(*, scope: ResultsScope, plan: str) -> tuple[ResultsSnapshot | None, int]:
    """The newest stored computation of the scope and the data version now: one query when
    there is a stored computation (the version read with it), two otherwise."""
    done = newest_done(scope_key=scope.key, plan=plan)
    return done, (done.current_version if done is not None else data_version())


def _results_of(snapshot: ResultsSnapshot, *, scope: ResultsScope, version: int):
    try:
        computed = snapshots.load(snapshot.payload)
    except snapshots.UnreadablePayload:
        logger.warning("Results snapshot %s unreadable; computing again", snapshot.pk)
        return None
    return Results(
        site=scope.site,
        sites=scope.sites,
        snapshot=snapshot,
        current_version=version,
        **computed,
    )


@dataclass(frozen=True)
class ResultsPage:
    """What the results page shows: the results (None while the first computation of this
    scope runs), the data version now, and the computation asked for, if one is."""

    scope: ResultsScope
    version: int
    results: Results | None
    pending: ResultsSnapshot | None = None


def results_page(*, user, site_code: str = "", plan: str = DEFAULT_PLAN) -> ResultsPage:
    """The stored results of the user's scope at the current data version (2 queries: the
    user's sites, the stored computation with the version now); else
    the newest older ones and a computation asked for (queued once per scope; inline when
    Celery is eager)."""
    scope = results_scope(user=user, site_code=site_code)
    done, version = _stored_and_version(scope=scope, plan=plan)
    if done is not None and done.data_version >= version:
        results = _results_of(done, scope=scope, version=version)
        if results is not None:
            return ResultsPage(scope, version, results)
    pending, _ = request_computation(scope=scope, user=user, version=version, plan=plan)
    if runs_inline():
        pending.refresh_from_db()
        if pending.status == ResultsSnapshot.Status.DONE:
            done, pending = pending, None
    results = _results_of(done, scope=scope, version=version) if done is not None else None
    return ResultsPage(scope, version, results, pending)


def recompute(*, user, site_code: str = "", plan: str = DEFAULT_PLAN) -> ResultsSnapshot:
    """ "Recompute now": a new computation of the user's scope even if the stored one is of
    the current version (after a release that changed a statistic, say). Logged with who
    asked; the row keeps requested_by."""
    scope = results_scope(user=user, site_code=site_code)
    snapshot, created = request_computation(
        scope=scope, user=user, version=data_version(), plan=plan
    )
    logger.info(
        "Results recomputation asked by %s for %s: computation %s (%s)",
        user,
        scope.key,
        snapshot.pk,
        "new" if created else "already asked for",
    )
    return snapshot


def current_results(*, user, site_code: str = "", with_charts: bool = True) -> Results:
    """The results for the CSV and the PDF: the stored computation of the current data
    version of the user's scope, else computed now (and not stored: a download does not wait
    for the queue)."""
    scope = results_scope(user=user, site_code=site_code)
    done, version = _stored_and_version(scope=scope, plan=DEFAULT_PLAN)
    if done is not None and done.data_version >= version:
        results = _results_of(done, scope=scope, version=version)
        if results is not None:
            return results
    return Results(
        site=scope.site,
        sites=scope.sites,
        current_version=version,
        **computed_results(site_ids=scope.site_ids, with_charts=with_charts),
    )
