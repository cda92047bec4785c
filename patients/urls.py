from django.urls import path

from . import views

app_name = "patients"
urlpatterns = [
    path("", views.PatientListView.as_view(), name="patient-list"),
    path("enrol/", views.patient_enrol, name="patient-enrol"),
    path("<uuid:patient_uuid>/", views.patient_detail, name="patient-detail"),
    path("<uuid:patient_uuid>/identity/", views.identity_edit, name="identity-edit"),
    path("<uuid:patient_uuid>/consent/", views.consent_create, name="consent-create"),
    path(
        "<uuid:patient_uuid>/consent/<uuid:consent_uuid>/document/",
        views.consent_document,
        name="consent-document",
    ),
    path(
        "<uuid:patient_uuid>/consent/<uuid:consent_uuid>/withdraw/",
        views.consent_withdraw,
        name="consent-withdraw",
    ),
    path(
        "<uuid:patient_uuid>/visits/<uuid:visit_uuid>/<slug:code>/<int:sequence>/",
        views.crf_edit,
        name="crf-edit",
    ),
    path(
        "<uuid:patient_uuid>/visits/<uuid:visit_uuid>/<slug:code>/<int:sequence>/void/",
        views.crf_void,
        name="crf-void",
    ),
]
