import logging
import sys

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection, transaction
from django.db.models import Count
from django.http import HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import requires_csrf_token
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError

from core.roles import Role, has_role
from followup.selectors import visits_due_counts
from monitoring.selectors import audit_trail_reviews, query_counts
from patients.selectors import Stage, patient_list
from trial.selectors import active_protocol, sites_for_user

logger = logging.getLogger(__name__)


def home(request):
    """The user's sites at a glance: patients by stage, and where to go next."""
    patients = patient_list(user=request.user)
    by_stage = {
        row["stage"]: row["n"]
        for row in patients.order_by().values("stage").annotate(n=Count("id"))
    }
    stages = [(key, label, by_stage.get(key, 0)) for key, label in Stage.CHOICES]
    # Monitors and admins also see what is theirs to do: the SDV list and the last review.
    monitors = has_role(request.user, Role.MONITOR, Role.ADMIN)
    return render(
        request,
        "core/home.html",
        {
            "protocol": active_protocol(),
            "sites": sites_for_user(user=request.user),
            "stages": stages,
            "patient_total": sum(by_stage.values()),
            "flagged_total": patients.filter(has_flags=True).count(),
            "visit_counts": visits_due_counts(user=request.user, today=timezone.localdate()),
            "query_counts": query_counts(user=request.user),
            "monitors": monitors,
            "last_review": next(iter(audit_trail_reviews(user=request.user, limit=1)), None)
            if monitors
            else None,
        },
    )


@login_not_required
@never_cache
@transaction.non_atomic_requests
def healthz(request):
    """For docker-compose's web healthcheck and any load balancer: 200 "ok" when the database
    answers `SELECT 1`, 503 when it does not. No login, no session, nothing written; outside
    ATOMIC_REQUESTS, whose transaction would fail on a dead database before the view runs."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return HttpResponse("database unavailable", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


# What a missing service raises: the database (refused, dropped, restarted) and the broker.
SERVICE_DOWN_ERRORS = (DatabaseError, BrokerError, RedisConnectionError)


@requires_csrf_token
def server_error(request):
    """handler500. When the error is a missing database or broker, say so with 503 and
    Retry-After: the request's transaction was rolled back, so nothing from the page was
    saved, and the browser's Back keeps what was typed. The page is rendered without the
    request's context (the context processors read the database)."""
    error = sys.exc_info()[1]
    if isinstance(error, SERVICE_DOWN_ERRORS):
        what = "database" if isinstance(error, DatabaseError) else "job service"
        logger.error("Service unavailable (%s): %r", what, error)
        html = render_to_string("503.html", {"what": what})
        response = HttpResponse(html, status=503)
        response["Retry-After"] = "30"
        return response
    return HttpResponseServerError(render_to_string("500.html"))
