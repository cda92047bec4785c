from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.csv import Writer
from core.permissions import role_required
from core.roles import RESULTS_ROLES
from core.scoping import scoped_object_or_404
from exports import services as pdf_services
from exports.models import PdfJob
from trial.models import StudySite

from .exports import results_csv_rows, results_filename
from .selectors import Results, study_results


def _results(request, *, with_charts: bool = True) -> Results:
    return study_results(
        user=request.user, site_code=request.GET.get("site", ""), with_charts=with_charts
    )


@role_required(*RESULTS_ROLES)
def results(request):
    """The trial's results tables and charts, live from the entered data (filter by site)."""
    data = _results(request)
    return render(
        request,
        "reports/results.html",
        {"results": data, "query": f"?site={data.site.code}" if data.site else ""},
    )


@role_required(*RESULTS_ROLES)
def results_csv(request):
    data = _results(request, with_charts=False)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = results_filename(results=data, extension="csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    Writer(response).writerows(results_csv_rows(results=data))
    return response


@role_required(*RESULTS_ROLES)
@require_POST
def results_pdf_request(request):
    """The PDF takes long with a large cohort: it is a PDF job (exports), built by the worker
    and followed on the job page. `site` is the results page's filter (a site code)."""
    code = request.POST.get("site", "")
    site = scoped_object_or_404(StudySite, request.user, code=code) if code else None
    job, created = pdf_services.pdf_job_request(
        user=request.user, kind=PdfJob.Kind.RESULTS, site=site
    )
    if not created:
        messages.info(request, "This PDF was already asked for: here is its progress.")
    return redirect("exports:job-detail", job_uuid=job.uuid)
