from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("two-factor/", views.second_factor_view, name="second-factor"),
    path("two-factor/enrol/", views.enrol_view, name="second-factor-enrol"),
]
