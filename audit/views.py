from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from core.csv import streaming_csv_response
from core.permissions import role_required
from core.roles import AUDIT_ROLES, Role

from .chain import parse_anchor, verify_audit_trail
from .forms import AuditSearchForm
from .selectors import (
    audit_trail,
    audit_trail_csv_rows,
    hide_identifiers,
    record_history,
    trail_page,
)


def record_history_view(request, model_label, record_uuid):
    """The history of one record: each field's changes in order. Anyone who may see the
    record (site scope) may see its history."""
    try:
        model = apps.get_model(model_label)
    except (LookupError, ValueError) as exc:
        raise Http404("Unknown record type.") from exc
    # A site-scoped record of the audited apps; not the trail itself, nor a PDF job.
    audited = model._meta.app_label in settings.AUDITED_APPS
    if not audited or not hasattr(model.objects, "for_user"):
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
    # Keyset pages (newer / older than a row), no COUNT(*) over the trail (issue 12).
    page = trail_page(
        entries, older=request.GET.get("older", ""), newer=request.GET.get("newer", "")
    )
    page.object_list = list(hide_identifiers(page.object_list, user=request.user))
    params = request.GET.copy()
    for key in ("page", "older", "newer"):
        params.pop(key, None)
    return render(
        request,
        "audit/audit_trail.html",
        {
            "form": form,
            "page_obj": page,
            "querystring": params.urlencode(),
        },
    )


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
