"""The audit-trail review pages (ICH E6(R3) 4.2.3), at /audit/review/ beside the trail's search:
the review of a period and site (monitoring.audit_review), each section's CSV, and recording
that a review was done (an AuditTrailReview)."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.selectors import hide_identifiers
from core.csv import streaming_csv_response
from core.forms import apply_validation_error
from core.permissions import role_required
from core.roles import AUDIT_ROLES
from trial.selectors import sites_for_user

from . import services
from .audit_review import REVIEW_CSV, AuditReview, default_period, out_of_hours_rule
from .forms import AuditReviewForm, AuditReviewRecordForm
from .selectors import audit_trail_reviews

# Rows shown per section; the section's CSV has them all.
REVIEW_ROWS_SHOWN = 100


def _review_for(request, params) -> tuple[AuditReviewForm, AuditReview]:
    form = AuditReviewForm(
        params or None,
        sites=sites_for_user(user=request.user),
        default_period=default_period(),
    )
    return form, AuditReview(user=request.user, **form.period())


@role_required(*AUDIT_ROLES)
def audit_review_view(request):
    form, review = _review_for(request, request.GET)
    if request.GET.get("format") == "csv":
        section = request.GET.get("section", "")
        if section not in REVIEW_CSV:
            raise Http404("Unknown section.")
        name = f"audit-review-{section}-{review.date_from:%Y%m%d}-{review.date_to:%Y%m%d}.csv"
        return streaming_csv_response(REVIEW_CSV[section](review), filename=name)
    return _review_page(request, form, review)


def _review_page(request, form, review, record_form=None):
    period = {
        "date_from": review.date_from.isoformat(),
        "date_to": review.date_to.isoformat(),
    }
    # Every section is read here, not from the template.
    outside = review.outside_application if review.sees_database_changes else None
    return render(
        request,
        "monitoring/audit_review.html",
        {
            "form": form,
            "review": review,
            "per_user": review.per_user,
            "after_signature": review.after_signature,
            "out_of_hours": review.out_of_hours,
            "late": review.late,
            "outside_count": outside.count() if outside is not None else None,
            "outside_rows": (
                list(hide_identifiers(outside[:REVIEW_ROWS_SHOWN], user=request.user))
                if outside is not None
                else []
            ),
            "out_of_hours_rule": out_of_hours_rule(),
            "late_days": settings.AUDIT_REVIEW_LATE_ENTRY_DAYS,
            "weak_chars": settings.AUDIT_REVIEW_WEAK_REASON_CHARS,
            "shown": REVIEW_ROWS_SHOWN,
            "querystring": urlencode({"site": review.site_code, **period}),
            "trail_period": urlencode(period),
            "record_form": record_form
            or AuditReviewRecordForm(initial={"site": review.site_code, **period}),
            "recorded": audit_trail_reviews(user=request.user),
        },
    )


@role_required(*AUDIT_ROLES)
@require_POST
def audit_review_record_view(request):
    """Record that the review page was gone through, with its findings and a note."""
    form = AuditReviewRecordForm(request.POST)
    if form.is_valid():
        site = form.cleaned_data["site"]
        if site and site not in {s.code for s in sites_for_user(user=request.user)}:
            raise PermissionDenied("Not one of your sites.")
        review = AuditReview(
            user=request.user,
            site_code=site,
            date_from=form.cleaned_data["date_from"],
            date_to=form.cleaned_data["date_to"],
        )
        try:
            services.audit_trail_review_record(
                user=request.user, review=review, note=form.cleaned_data["note"]
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, "Audit-trail review recorded.")
            query = urlencode(
                {"site": site, "date_from": review.date_from, "date_to": review.date_to}
            )
            return redirect(f"{reverse('monitoring:audit-review')}?{query}")
    # The page again, for the same site and period, with the note's error and the text kept.
    page_form, review = _review_for(request, request.POST)
    return _review_page(request, page_form, review, record_form=form)
