from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


def _install_triggers(sender, using, **kwargs):
    from django.db import connections

    from . import dbtriggers

    dbtriggers.install(connections[using])


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring (queries, signatures)"

    def ready(self):
        from audit import integrity as restore
        from core import guards
        from patients import hooks

        from . import selectors
        from .integrity import signature_check
        from .models import SourceVerification
        from .services import ensure_not_locked, sdv_form_saved, sdv_verification_saved

        # Every CRF write checks that no valid signature locks its visit.
        guards.register(ensure_not_locked)
        # A restored database is checked for signatures that no longer verify.
        restore.register_check(signature_check)
        # The patient page: open queries, source verification and signatures on the matrix.
        hooks.register_record_annotator(selectors.annotate_record)
        # The CRF page: the lock, the form's queries and its source verification.
        hooks.register_slot_review(
            hooks.SlotReview(
                lock=selectors.locking_signature,
                queries=selectors.queries_for_record,
                sdv=selectors.record_sdv,
            )
        )
        # The stored SDV status, in the transaction of each write: a form's save or void
        # (every CRF model: the receiver checks the form is registered), a verification.
        post_save.connect(sdv_form_saved, dispatch_uid="sdv_form_saved")
        post_save.connect(
            sdv_verification_saved, sender=SourceVerification, dispatch_uid="sdv_verification"
        )
        # A write outside the application queues the form for a new hash (PostgreSQL).
        post_migrate.connect(_install_triggers, sender=self, dispatch_uid="sdv_triggers")
