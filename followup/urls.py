from django.urls import path

from . import views

app_name = "followup"
urlpatterns = [
    path("schedule/", views.schedule, name="schedule"),
    path("reminders/", views.reminder_list, name="reminder-list"),
    path("patients/<uuid:patient_uuid>/", views.patient_followup, name="patient-followup"),
    path(
        "patients/<uuid:patient_uuid>/visits/unscheduled/",
        views.visit_add_unscheduled,
        name="visit-add-unscheduled",
    ),
    path(
        "patients/<uuid:patient_uuid>/visits/extend/",
        views.schedule_extend,
        name="schedule-extend",
    ),
    path(
        "patients/<uuid:patient_uuid>/end-of-study/",
        views.end_of_study_open,
        name="end-of-study",
    ),
    path(
        "patients/<uuid:patient_uuid>/adverse-events/",
        views.adverse_event_list,
        name="ae-list",
    ),
    path(
        "patients/<uuid:patient_uuid>/adverse-events/new/",
        views.adverse_event_create,
        name="ae-create",
    ),
    path(
        "patients/<uuid:patient_uuid>/adverse-events/<uuid:event_uuid>/",
        views.adverse_event_edit,
        name="ae-edit",
    ),
    path(
        "patients/<uuid:patient_uuid>/adverse-events/<uuid:event_uuid>/void/",
        views.adverse_event_void,
        name="ae-void",
    ),
    path(
        "patients/<uuid:patient_uuid>/medications/",
        views.medication_list,
        name="cm-list",
    ),
    path(
        "patients/<uuid:patient_uuid>/medications/new/",
        views.medication_create,
        name="cm-create",
    ),
    path(
        "patients/<uuid:patient_uuid>/medications/<uuid:medication_uuid>/",
        views.medication_edit,
        name="cm-edit",
    ),
    path(
        "patients/<uuid:patient_uuid>/medications/<uuid:medication_uuid>/void/",
        views.medication_void,
        name="cm-void",
    ),
]
