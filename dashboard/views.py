from django.db.models import Count
from django.shortcuts import render
from django.utils import timezone

from core.roles import Role, has_role
from followup.selectors import visits_due_counts
from monitoring.selectors import audit_trail_reviews, query_counts
from patients.selectors import Stage, patient_list
from trial.selectors import active_protocol, sites_for_user


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
        "dashboard/home.html",
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
