from django.urls import path

from . import views

app_name = "reports"
urlpatterns = [
    path("results/", views.results, name="results"),
    path("results.csv", views.results_csv, name="results-csv"),
    path("results/pdf/", views.results_pdf_request, name="results-pdf"),
]
