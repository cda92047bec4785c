from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The home page and the navigation every page shows: the top of the layers (they read
    every app below)."""

    name = "dashboard"
    verbose_name = "Dashboard"
