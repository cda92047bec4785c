from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring (queries, signatures)"

    def ready(self):
        from core import guards

        from .services import ensure_not_locked

        # Every CRF write checks that no valid signature locks its visit.
        guards.register(ensure_not_locked)
