from django.urls import include, path

from . import audit_review_views, views

app_name = "monitoring"
# Under /monitoring/.
monitoring_urls = [
    path("queries/", views.query_list_view, name="query-list"),
    path("queries/<uuid:query_uuid>/", views.query_detail_view, name="query-detail"),
    path(
        "queries/new/<uuid:patient_uuid>/<uuid:visit_uuid>/<slug:code>/<int:sequence>/",
        views.query_open_view,
        name="query-open",
    ),
    path("sdv/", views.sdv_list_view, name="sdv-list"),
    path(
        "sdv/<uuid:patient_uuid>/<uuid:visit_uuid>/<slug:code>/<int:sequence>/",
        views.source_verify_view,
        name="source-verify",
    ),
    path("sign/<uuid:patient_uuid>/", views.sign_view, name="sign-casebook"),
    path("sign/<uuid:patient_uuid>/<uuid:visit_uuid>/", views.sign_view, name="sign-visit"),
    path("signatures/<uuid:signature_uuid>/unlock/", views.unlock_view, name="signature-unlock"),
    path("consent-audit/", views.consent_audit_view, name="consent-audit"),
    path("user-access/", views.user_access_view, name="user-access"),
    path("user-access/review/", views.access_review_record_view, name="access-review-record"),
    path("user-access/<str:username>/unlock/", views.user_unlock_view, name="user-unlock"),
    path(
        "user-access/<str:username>/reset-second-factor/",
        views.user_second_factor_reset_view,
        name="user-second-factor-reset",
    ),
]
# The audit-trail review keeps its address beside the trail's search, /audit/review/.
audit_review_urls = [
    path("", audit_review_views.audit_review_view, name="audit-review"),
    path("record/", audit_review_views.audit_review_record_view, name="audit-review-record"),
]
urlpatterns = [
    path("monitoring/", include(monitoring_urls)),
    path("audit/review/", include(audit_review_urls)),
]
