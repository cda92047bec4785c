"""The audit-trail review pages (ICH E6(R3) 4.2.3), at /audit/review/ beside the trail's search:
the review of a period and site (monitoring.audit_review), each section's CSV, and recording
that a review was done (an AuditTrailReview)."""

from datetime import UTC
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.selectors import hide_identifiers
from core.csv import csv_lines
from core.forms import apply_validation_error
from core.permissions import role_required
from core.roles import AUDIT_ROLES
from trial.selectors import sites_for_user

from . import services
from .audit_review import AuditReview, default_period, out_of_hours_rule
from .forms import AuditReviewForm, AuditReviewRecordForm
from .selectors import audit_trail_reviews


def _utc(value) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def _per_user_csv(review):
    yield [
        "user",
        "records_created",
        "fields_changed",
        "records_voided",
        "changes_with_weak_reason",
        "last_activity_utc",
    ]
    for r in review.per_user:
        yield [
            r.user_name,
            r.records_created,
            r.fields_changed,
            r.records_voided,
            r.weak_reasons,
            _utc(r.last_at),
        ]


def _after_signature_csv(review):
    yield [
        "timestamp_utc",
        "user",
        "action",
        "site",
        "study_id",
        "form",
        "record",
        "field",
        "old_value",
        "new_value",
        "reason",
        "signature_scope",
        "signature_visit",
        "signed_by",
        "signed_at_utc",
        "signature_voided_at_utc",
    ]
    for r in review.after_signature:
        e, s = r.entry, r.signature
        revocation = getattr(s, "revocation", None)
        yield [
            _utc(e.timestamp),
            e.user_name,
            e.action,
            e.patient.site.code,
            e.patient.study_id,
            e.form_code,
            e.object_repr,
            e.field_name,
            e.old_value,
            e.new_value,
            e.reason,
            s.scope,
            s.visit.label if s.visit_id else "",
            s.signer_full_name,
            _utc(s.signed_at),
            _utc(revocation.revoked_at) if revocation else "",
        ]


def _out_of_hours_csv(review):
    yield [
        "timestamp_utc",
        "local_time",
        "why",
        "user",
        "action",
        "site",
        "study_id",
        "form",
        "record",
        "fields",
        "reason",
    ]
    for r in review.out_of_hours:
        yield [
            _utc(r.at),
            r.local.isoformat(),
            r.why,
            r.user_name,
            r.action,
            r.site_code,
            r.study_id,
            r.form_code,
            r.object_repr,
            r.fields,
            r.reason,
        ]


def _late_csv(review):
    yield [
        "entered_at_utc",
        "entered_on_local",
        "assessment_date",
        "days_late",
        "user",
        "site",
        "study_id",
        "form",
        "record",
        "voided",
    ]
    for r in review.late:
        yield [
            _utc(r.entered_at),
            r.entered_on.isoformat(),
            r.assessment_date.isoformat(),
            r.days_late,
            r.user_name,
            r.site_code,
            r.study_id,
            r.form_code,
            r.object_repr,
            "yes" if r.voided else "",
        ]


def _outside_application_csv(review):
    yield ["timestamp_utc", "database_user", "action", "table_row", "field", "old", "new"]
    rows = review.outside_application.iterator(chunk_size=2000)
    for e in hide_identifiers(rows, user=review.user):
        yield [
            _utc(e.timestamp),
            e.user_name,
            e.action,
            e.object_repr,
            e.field_name,
            e.old_value,
            e.new_value,
        ]


REVIEW_CSV = {
    "per-user": _per_user_csv,
    "after-signature": _after_signature_csv,
    "out-of-hours": _out_of_hours_csv,
    "late": _late_csv,
    "outside-application": _outside_application_csv,
}
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
        rows = csv_lines(REVIEW_CSV[section](review))
        response = StreamingHttpResponse(rows, content_type="text/csv")
        name = f"audit-review-{section}-{review.date_from:%Y%m%d}-{review.date_to:%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
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
