from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.csv import streaming_csv_response
from core.permissions import role_required
from core.roles import RESULTS_ROLES

from . import services
from .exports import results_csv_rows, results_filename

# The "computing" page reloads itself this often (a Refresh header: no script, no CSP issue).
REFRESH_SECONDS = 5


@role_required(*RESULTS_ROLES)
def results(request):
    """The trial's results tables and charts, as computed by the results job for the user's
    scope (filter by site); states when and from which data version."""
    page = services.results_page(user=request.user, site_code=request.GET.get("site", ""))
    site = page.scope.site
    computing = page.results is None and page.pending is not None
    response = render(
        request,
        "reports/results.html",
        {
            "page": page,
            "results": page.results,
            "scope": page.scope,
            "query": f"?site={site.code}" if site else "",
            "computing": computing,
            "refresh_seconds": REFRESH_SECONDS,
        },
    )
    if computing:  # nothing to show yet: the browser asks again (no script needed)
        response["Refresh"] = str(REFRESH_SECONDS)
    return response


@require_POST
@role_required(*RESULTS_ROLES)
def results_recompute(request):
    """ "Recompute now" (POST): a computation of the user's scope, queued once."""
    site_code = request.POST.get("site", "")
    services.recompute(user=request.user, site_code=site_code)
    messages.info(request, "The results are being recomputed; this page shows them when done.")
    url = reverse("reports:results")
    return redirect(f"{url}?site={site_code}" if site_code else url)


@role_required(*RESULTS_ROLES)
def results_csv(request):
    data = services.current_results(
        user=request.user, site_code=request.GET.get("site", ""), with_charts=False
    )
    return streaming_csv_response(
        results_csv_rows(results=data),
        filename=results_filename(results=data, extension="csv"),
        content_type="text/csv; charset=utf-8",
    )
