from django.urls import path

from . import views

app_name = "audit"
urlpatterns = [
    path("", views.audit_trail_view, name="trail"),
    path("chain/", views.audit_chain_view, name="chain"),
    path(
        "history/<str:model_label>/<uuid:record_uuid>/",
        views.record_history_view,
        name="record-history",
    ),
]
