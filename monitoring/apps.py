from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring (queries, signatures)"

    def ready(self):
        from core import guards
        from patients import hooks

        from . import selectors
        from .services import ensure_not_locked

        # Every CRF write checks that no valid signature locks its visit.
        guards.register(ensure_not_locked)
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
