from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def _install_triggers(sender, using, **kwargs):
    from django.conf import settings
    from django.db import connections

    from . import dbroles, dbtriggers

    dbtriggers.install(connections[using])
    # Production: the role the application connects as gets its privileges on every table,
    # new ones included, and none that could switch these triggers off (audit/dbroles.py).
    if settings.DATABASE_APP_ROLE:
        dbroles.app_role_grant(connections[using], settings.DATABASE_APP_ROLE)


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        from core import trail

        from . import (
            chain,
            checks,  # noqa: F401  (registers the database role check)
            services,
            signals,
        )

        # trial (below audit) saves the study configuration through the trail (core.trail).
        trail.register(save=services.audited_save, delete=services.audited_delete)

        # SQLite (the demo) hashes the audit chain with a Python function (audit/chain.py).
        connection_created.connect(chain.register_sqlite_function, dispatch_uid="audit_chain")

        signals.connect_axes()
        signals.connect_memberships()
        # After every migrate (and test database creation): triggers on all clinical tables,
        # and the application role's privileges.
        post_migrate.connect(_install_triggers, sender=self, dispatch_uid="audit_triggers")
