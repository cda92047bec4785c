from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.forms import LoginForm
from accounts.middleware import second_factor_not_required
from core import views as core_views
from dashboard import views as dashboard_views

urlpatterns = [
    path("", dashboard_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
    path(
        "accounts/logout/",
        second_factor_not_required(auth_views.LogoutView.as_view()),
        name="logout",
    ),
    # Two-factor sign-in: the code page and enrolment (accounts/).
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("trial/", include("trial.urls")),
    path("patients/", include("patients.urls")),
    path("followup/", include("followup.urls")),
    # Before audit/: monitoring's pages (monitoring/...) and the audit-trail review, which
    # keeps its address under audit/review/ (monitoring.urls).
    path("", include("monitoring.urls")),
    path("audit/", include("audit.urls")),
    # /exports/... and the results page's /reports/results/pdf/ (exports.urls).
    path("", include("exports.urls")),
    path("reports/", include("reports.urls")),
]

# The database or the broker gone away: a page saying nothing was saved, with 503 (core.views).
handler500 = "core.views.server_error"

# Uploaded files are never served from MEDIA_URL: views check who may see them.
