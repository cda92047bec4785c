from datetime import UTC
from urllib.parse import urlencode

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.csv import csv_lines, streaming_csv_response
from core.forms import apply_validation_error
from core.permissions import role_required
from core.roles import Role
from monitoring import services as monitoring_services
from monitoring.selectors import audit_trail_reviews
from trial.selectors import sites_for_user

from .chain import parse_anchor, verify_audit_trail
from .forms import AuditReviewForm, AuditReviewRecordForm, AuditSearchForm
from .review import AuditReview, default_period, out_of_hours_rule
from .selectors import audit_trail, audit_trail_csv_rows, hide_identifiers, record_history

AUDIT_ROLES = (Role.ADMIN, Role.MONITOR)


def record_history_view(request, model_label, record_uuid):
    """The history of one record: each field's changes in order. Anyone who may see the
    record (site scope) may see its history."""
    try:
        model = apps.get_model(model_label)
    except (LookupError, ValueError) as exc:
        raise Http404("Unknown record type.") from exc
    if not hasattr(model.objects, "for_user"):
        raise Http404("This record has no history page.")
    instance = model.objects.for_user(request.user).filter(uuid=record_uuid).first()
    if instance is None:
        raise Http404("Not found at your sites.")
    return render(
        request,
        "audit/record_history.html",
        {
            "instance": instance,
            "entries": list(
                hide_identifiers(
                    record_history(instance=instance).select_related("user"), user=request.user
                )
            ),
            "patient": getattr(getattr(instance, "visit", None), "patient", None)
            or getattr(instance, "patient", None),
        },
    )


@role_required(*AUDIT_ROLES)
def audit_trail_view(request):
    form = AuditSearchForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    entries = audit_trail(user=request.user, **{k: v for k, v in filters.items() if v})
    if request.GET.get("format") == "csv":
        rows = hide_identifiers(entries.iterator(chunk_size=2000), user=request.user)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        return streaming_csv_response(
            audit_trail_csv_rows(rows), filename=f"audit-trail-{stamp}.csv"
        )
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    page.object_list = list(hide_identifiers(page.object_list, user=request.user))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "audit/audit_trail.html",
        {
            "form": form,
            "page_obj": page,
            "querystring": params.urlencode(),
        },
    )


# ---- audit-trail review ----------------------------------------------------------------------


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
        "audit/audit_review.html",
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
            monitoring_services.audit_trail_review_record(
                user=request.user, review=review, note=form.cleaned_data["note"]
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, "Audit-trail review recorded.")
            query = urlencode(
                {"site": site, "date_from": review.date_from, "date_to": review.date_to}
            )
            return redirect(f"{reverse('audit:review')}?{query}")
    # The page again, for the same site and period, with the note's error and the text kept.
    page_form, review = _review_for(request, request.POST)
    return _review_page(request, page_form, review, record_form=form)


# ---- the hash chain ---------------------------------------------------------------------------


@role_required(Role.ADMIN)
@transaction.non_atomic_requests  # the check takes its own read-only snapshot
def audit_chain_view(request):
    """Verify the audit trail's hash chains now (audit/chain.py), and optionally anchors read
    off printed casebooks. In the request: the trial's trail verifies at tens of thousands of
    rows a second (bench/audit_chain.py); `verify_audit_trail` does the same from cron."""
    anchor_text = request.GET.get("anchors", "").strip()
    anchors, anchor_errors = [], []
    for line in anchor_text.splitlines():
        if line.strip():
            try:
                anchors.append(parse_anchor(line.strip()))
            except ValueError as error:
                anchor_errors.append(str(error))
    report = verify_audit_trail(anchors=anchors)
    return render(
        request,
        "audit/audit_chain.html",
        {
            "report": report,
            "anchor_text": anchor_text,
            "anchor_errors": anchor_errors,
            "anchors_checked": len(anchors),
        },
    )
