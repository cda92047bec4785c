from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Results"

    def ready(self):
        from patients import hooks

        from . import checks  # noqa: F401  (registers the analysis plans' check)
        from .selectors import patient_charts_panel

        # The patient's course (FSH/LH, testosterone, testicular volume, sperm) on his page.
        hooks.register_panel(patient_charts_panel)
