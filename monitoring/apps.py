from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring (queries, signatures)"

    def ready(self):
        from audit import integrity as restore
        from core import guards

        from .integrity import signature_check
        from .services import ensure_not_locked

        # Every CRF write checks that no valid signature locks its visit.
        guards.register(ensure_not_locked)
        # A restored database is checked for signatures that no longer verify.
        restore.register_check(signature_check)
