from django.urls import include, path

from . import views

app_name = "exports"
urlpatterns = [
    path(
        "exports/",
        include(
            [
                path("", views.study_exports, name="study"),
                path("pdf/", views.pdf_request, name="pdf-request"),
                path("jobs/<uuid:job_uuid>/", views.job_detail, name="job-detail"),
                path("jobs/<uuid:job_uuid>/status/", views.job_status, name="job-status"),
                path("jobs/<uuid:job_uuid>/download/", views.job_download, name="job-download"),
                path("blank/<slug:code>/", views.blank_crf, name="blank-crf"),
                path("csv/analysis/", views.analysis_csv, name="analysis-csv"),
                path("csv/adverse-events/", views.adverse_events_csv, name="adverse-events-csv"),
                path(
                    "csv/concomitant-medications/",
                    views.concomitant_medications_csv,
                    name="concomitant-medications-csv",
                ),
                path("csv/dictionary/", views.dictionary_csv, name="dictionary-csv"),
                path("csv/form/<slug:code>/", views.form_csv, name="form-csv"),
                path("odm/", views.odm_xml, name="odm-xml"),
                path("bundle/", views.bundle_zip, name="bundle-zip"),
            ]
        ),
    ),
    # The results report's PDF job, asked for on the results page: its path stays with the
    # results (/reports/results/pdf/), the view is the PDF jobs' (reports imports no exports).
    path("reports/results/pdf/", views.results_pdf_request, name="results-pdf"),
]
