from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import SecondFactorResetForm
from accounts.lockout import locked_usernames, lockout_lift
from accounts.selectors import users_with_authenticator
from accounts.services import second_factor_reset
from core import crf
from core.csv import streaming_csv_response
from core.forms import apply_validation_error
from core.permissions import role_required
from core.roles import DATA_ENTRY_ROLES, Role, has_role
from core.scoping import scoped_object_or_404
from core.submissions import Created, already_saved, create_once
from patients.models import Patient
from trial.selectors import sites_for_user

from . import services
from .forms import (
    AccessReviewForm,
    QueryOpenForm,
    QueryReplyForm,
    SignForm,
    UnlockForm,
    UserUnlockForm,
)
from .models import DataQuery, Signature
from .selectors import (
    CONSENT_PROBLEMS,
    SDV_PAGE_SIZE,
    SdvStatus,
    access_history_csv_rows,
    access_reviews,
    consent_audit_before_consent_count,
    consent_audit_csv_rows,
    consent_audit_page_rows,
    consent_audit_patients,
    consent_audit_rows,
    covered_records,
    query_list,
    sdv_worklist,
    user_access_csv_rows,
    user_access_list,
    visit_is_complete,
)

MONITOR_ROLES = (Role.MONITOR, Role.ADMIN)
CONSENT_AUDIT_PAGE_SIZE = 50


def _patient(request, patient_uuid) -> Patient:
    return scoped_object_or_404(
        Patient.objects.select_related("site__protocol"), request.user, uuid=patient_uuid
    )


# ---- queries ---------------------------------------------------------------------------------


def query_list_view(request):
    status = request.GET.get("status", "open")
    queries = query_list(user=request.user, status=status, site_code=request.GET.get("site", ""))
    return render(
        request,
        "monitoring/query_list.html",
        {
            "page_obj": Paginator(queries, 50).get_page(request.GET.get("page")),
            "status": status,
            "sites": sites_for_user(user=request.user),
            "site": request.GET.get("site", ""),
        },
    )


@role_required(Role.MONITOR)
@require_http_methods(["GET", "POST"])
def query_open_view(request, patient_uuid, visit_uuid, code, sequence):
    patient = _patient(request, patient_uuid)
    visit = get_object_or_404(patient.visits.select_related("definition"), uuid=visit_uuid)
    if not crf.is_registered(code):
        raise Http404("Unknown form.")
    record = services.record_for_slot(visit=visit, code=code, sequence=sequence)
    if record is None:
        raise Http404("A query needs an entered form.")
    form = QueryOpenForm(
        request.POST or None, record=record, initial={"field_name": request.GET.get("field", "")}
    )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        token = data.pop("form_token")

        def raise_query() -> Created:
            query = services.query_open(record=record, user=request.user, **data)
            url = reverse("monitoring:query-detail", args=[query.uuid])
            return Created(url=url, label="The query")

        try:
            result, created = create_once(token=token, user=request.user, create=raise_query)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            if created:
                messages.success(request, "Query raised. The site sees it on the patient page.")
            else:
                messages.info(request, already_saved(result))
            return redirect(result.url)
    return render(
        request,
        "monitoring/query_open.html",
        {"patient": patient, "visit": visit, "record": record, "form": form},
    )


@require_http_methods(["GET", "POST"])
def query_detail_view(request, query_uuid):
    query = scoped_object_or_404(
        DataQuery.objects.select_related("patient", "visit__definition", "raised_by"),
        request.user,
        uuid=query_uuid,
    )
    form = QueryReplyForm(request.POST or None)
    can_answer = has_role(request.user, *DATA_ENTRY_ROLES)
    can_close = has_role(request.user, Role.MONITOR)
    if request.method == "POST" and form.is_valid():
        action = request.POST.get("action")
        allowed = {"answer": can_answer, "close": can_close, "reopen": can_close}
        if not allowed.get(action):
            raise PermissionDenied("Your role cannot do this on a query.")
        service = {
            "answer": services.query_answer,
            "close": services.query_close,
            "reopen": services.query_reopen,
        }[action]
        try:
            service(query=query, text=form.cleaned_data["text"], user=request.user)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"Query {query.get_status_display().lower()}.")
            return redirect("monitoring:query-detail", query_uuid=query.uuid)
    return render(
        request,
        "monitoring/query_detail.html",
        {
            "query": query,
            "messages_thread": query.messages.select_related("author"),
            "form": form,
            "can_answer": can_answer and query.is_open,
            "can_close": can_close,
            "form_url": _form_url(query),
        },
    )


def _form_url(query):
    from django.urls import reverse

    return reverse(
        "patients:crf-edit",
        args=[query.patient.uuid, query.visit.uuid, query.form_code, query.sequence],
    )


# ---- signatures ------------------------------------------------------------------------------


@role_required(Role.ANDROLOGIST)
@require_http_methods(["GET", "POST"])
def sign_view(request, patient_uuid, visit_uuid=None):
    patient = _patient(request, patient_uuid)
    visit = None
    if visit_uuid is not None:
        visit = get_object_or_404(patient.visits.select_related("definition"), uuid=visit_uuid)
    form = SignForm(
        request.POST or None,
        initial={"username": request.user.get_username()},
        first_signature=not services.has_signature_agreement(user=request.user),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.signature_sign(
                request=request,
                patient=patient,
                visit=visit,
                user=request.user,
                **form.cleaned_data,
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            what = f"Visit {visit.label}" if visit else "The casebook"
            messages.success(request, f"{what} signed. Its forms are now locked.")
            return redirect("patients:patient-detail", patient_uuid=patient.uuid)
    records = covered_records(patient=patient, visit=visit)
    return render(
        request,
        "monitoring/sign.html",
        {
            "patient": patient,
            "visit": visit,
            "form": form,
            "records": records,
            "complete": visit_is_complete(visit=visit) if visit else True,
            "open_queries": patient.queries.exclude(status=DataQuery.Status.CLOSED)
            .filter(**({"visit": visit} if visit else {}))
            .count(),
        },
    )


@role_required(Role.ADMIN)
@require_POST
def unlock_view(request, signature_uuid):
    signature = scoped_object_or_404(
        Signature.objects.select_related("patient"), request.user, uuid=signature_uuid
    )
    form = UnlockForm(request.POST)
    if form.is_valid():
        try:
            services.signature_unlock(
                signature=signature, reason=form.cleaned_data["reason"], user=request.user
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.warning(
                request, "Unlocked: the signature is void and the forms can be corrected."
            )
    else:
        messages.error(request, "Give the reason for unlocking.")
    return redirect("patients:patient-detail", patient_uuid=signature.patient.uuid)


# ---- consent audit ---------------------------------------------------------------------------


@role_required(*MONITOR_ROLES)
def consent_audit_view(request):
    site, problem = request.GET.get("site", ""), request.GET.get("problem", "")
    if request.GET.get("format") == "csv":
        rows = consent_audit_rows(user=request.user, site_code=site, problem=problem)
        return streaming_csv_response(consent_audit_csv_rows(rows), filename="consent-audit.csv")
    patients = consent_audit_patients(user=request.user, site_code=site, problem=problem)
    page_obj = Paginator(patients, CONSENT_AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "monitoring/consent_audit.html",
        {
            "page_obj": page_obj,
            "rows": consent_audit_page_rows(user=request.user, patients=list(page_obj)),
            "sites": sites_for_user(user=request.user),
            "site": site,
            "problem": problem,
            "problems": CONSENT_PROBLEMS,
            "before_consent": consent_audit_before_consent_count(patients),
        },
    )


# ---- user access (administrators) ------------------------------------------------------------


@role_required(Role.ADMIN)
def user_access_view(request):
    rows = user_access_list()
    export = {
        "csv": (user_access_csv_rows, "user-access"),
        "history-csv": (access_history_csv_rows, "user-access-history"),
    }.get(request.GET.get("format", ""))
    if export is not None:
        csv_rows, name = export
        return streaming_csv_response(csv_rows(rows), filename=f"{name}.csv")
    reviews = access_reviews()
    return render(
        request,
        "monitoring/user_access.html",
        {
            "rows": rows,
            "locked": locked_usernames(),
            "unlock_form": UserUnlockForm(),
            "enrolled": users_with_authenticator(),
            "reset_form": SecondFactorResetForm(),
            "cooloff_minutes": settings.AXES_COOLOFF_MINUTES,
            "reviews": reviews,
            "last_review": reviews[0] if reviews else None,
            "form": AccessReviewForm(),
        },
    )


@role_required(Role.ADMIN)
@require_POST
def access_review_record_view(request):
    form = AccessReviewForm(request.POST)
    if form.is_valid():
        services.access_review_record(user=request.user, note=form.cleaned_data["note"])
        messages.success(request, "Access review recorded, with the list as it stands now.")
    else:
        messages.error(request, "Write what you checked and found: the review was not recorded.")
    return redirect("monitoring:user-access")


@role_required(Role.ADMIN)
@require_POST
def user_unlock_view(request, username):
    """Ends a failed-login lockout before its cool-off, with a reason (an AuthEvent)."""
    try:
        lockout_lift(request=request, username=username, reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        messages.error(request, f"{username} was not unlocked: {' '.join(exc.messages)}")
    else:
        messages.success(request, f"Lockout lifted: {username} can sign in again.")
    return redirect("monitoring:user-access")


@role_required(Role.ADMIN)
@require_POST
def user_second_factor_reset_view(request, username):
    """A lost phone: removes another user's authenticator and recovery codes, with a reason
    (an AuthEvent); they enrol again at their next sign-in."""
    try:
        second_factor_reset(
            request=request, username=username, reason=request.POST.get("reason", "")
        )
    except ValidationError as exc:
        messages.error(
            request, f"{username}'s second factor was not reset: {' '.join(exc.messages)}"
        )
    else:
        messages.success(
            request, f"Second factor reset: {username} sets up an authenticator at next sign-in."
        )
    return redirect("monitoring:user-access")


# ---- source data verification ----------------------------------------------------------------


@role_required(Role.MONITOR)
@require_POST
def source_verify_view(request, patient_uuid, visit_uuid, code, sequence):
    patient = _patient(request, patient_uuid)
    visit = get_object_or_404(patient.visits.select_related("definition"), uuid=visit_uuid)
    if not crf.is_registered(code):
        raise Http404("Unknown form.")
    record = services.record_for_slot(visit=visit, code=code, sequence=sequence)
    try:
        services.source_verify(record=record, user=request.user, note=request.POST.get("note", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{crf.get(code).title} marked as source-verified.")
    return redirect(
        "patients:crf-edit",
        patient_uuid=patient.uuid,
        visit_uuid=visit.uuid,
        code=code,
        sequence=sequence,
    )


SDV_ROLES = (Role.MONITOR, Role.ADMIN)


@role_required(*SDV_ROLES)
def sdv_list_view(request):
    """The monitor's worklist: forms changed since verification first, then those not yet
    verified, then the verified ones."""
    status = request.GET.get("status", "")
    if status not in SdvStatus.LABELS:
        status = ""
    site = request.GET.get("site", "")
    rows = sdv_worklist(user=request.user, site_code=site, status=status)
    counts = rows.counts()
    return render(
        request,
        "monitoring/sdv_list.html",
        {
            "page_obj": Paginator(rows, SDV_PAGE_SIZE).get_page(request.GET.get("page")),
            "tabs": [(key, label, counts[key]) for key, label in SdvStatus.LABELS.items()],
            "status": status,
            "sites": sites_for_user(user=request.user),
            "site": site,
        },
    )
