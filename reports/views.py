from django.shortcuts import render

from core.csv import streaming_csv_response
from core.permissions import role_required
from core.roles import RESULTS_ROLES

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
    return streaming_csv_response(
        results_csv_rows(results=data),
        filename=results_filename(results=data, extension="csv"),
        content_type="text/csv; charset=utf-8",
    )
