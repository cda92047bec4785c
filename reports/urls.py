from django.urls import path

from . import views

app_name = "reports"
urlpatterns = [
    path("results/", views.results, name="results"),
    path("results/recompute/", views.results_recompute, name="results-recompute"),
    path("results.csv", views.results_csv, name="results-csv"),
    # The results PDF (a PDF job) is asked for at results/pdf/: exports:results-pdf.
]
