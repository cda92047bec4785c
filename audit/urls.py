from django.urls import path

from . import views

app_name = "audit"
urlpatterns = [
    path("", views.audit_trail_view, name="trail"),
    path("review/", views.audit_review_view, name="review"),
    path("chain/", views.audit_chain_view, name="chain"),
    path("review/record/", views.audit_review_record_view, name="review-record"),
    path(
        "history/<str:model_label>/<uuid:record_uuid>/",
        views.record_history_view,
        name="record-history",
    ),
]
