from django.shortcuts import render
from django.utils import timezone

from core.roles import Role, has_role
from followup.selectors import visits_due_counts
from monitoring.selectors import audit_trail_reviews, query_counts
from patients.selectors import stage_counts
from trial.selectors import active_protocol


def home(request):
    """The user's sites at a glance: patients by stage, and where to go next."""
    # One aggregate over the stored stages and flags (patients.models.PatientStatus).
    patients = stage_counts(user=request.user)
    # Monitors and admins also see what is theirs to do: the SDV list and the last review.
    monitors = has_role(request.user, Role.MONITOR, Role.ADMIN)
    return render(
        request,
        "dashboard/home.html",
        {
            # The user's sites: the menu's `user_sites` (dashboard.context_processors), the
            # same queryset, read once for both.
            "protocol": active_protocol(),
            "stages": patients.stages,
            "patient_total": patients.total,
            "flagged_total": patients.flagged,
            "visit_counts": visits_due_counts(user=request.user, today=timezone.localdate()),
            "query_counts": query_counts(user=request.user),
            "monitors": monitors,
            "last_review": next(iter(audit_trail_reviews(user=request.user, limit=1)), None)
            if monitors
            else None,
        },
    )
