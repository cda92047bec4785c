from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring (queries, signatures)"

    def ready(self):
        from audit import integrity as restore
        from core import guards
        from patients import hooks

        from . import selectors
        from .integrity import signature_check
        from .services import ensure_not_locked

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
