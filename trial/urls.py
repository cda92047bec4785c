from django.urls import path

from . import views

app_name = "trial"
urlpatterns = [
    path("protocol/", views.protocol_detail, name="protocol-detail"),
    path(
        "consent-versions/<uuid:version_uuid>/document/",
        views.consent_version_document,
        name="consent-version-document",
    ),
]
