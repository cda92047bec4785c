from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _install_triggers(sender, using, **kwargs):
    from django.db import connections

    from . import dbtriggers

    dbtriggers.install(connections[using])


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        from . import signals

        signals.connect_axes()
        signals.connect_memberships()
        # After every migrate (and test database creation): triggers on all clinical tables.
        post_migrate.connect(_install_triggers, sender=self, dispatch_uid="audit_triggers")
