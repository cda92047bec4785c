from django.apps import AppConfig


class FollowupConfig(AppConfig):
    name = "followup"
    verbose_name = "Follow-up"

    def ready(self):
        from core import crf, guards
        from patients import hooks

        from . import forms, models, selectors, services

        guards.register(services.ensure_not_after_end_of_study)
        # The patient page's visit status badges and what is due next.
        hooks.register_record_annotator(selectors.annotate_visit_statuses)
        # The injection date is the procedure date: saving it creates (or, when the date is
        # corrected, moves) the follow-up schedule (labs registers the form; followup owns
        # the schedule).
        crf.on_saved("injection", services.procedure_recorded)

        crf.register(
            "followup_visit",
            title="Follow-up visit",
            model=models.FollowUpVisit,
            form_class=forms.FollowUpVisitForm,
            cross_form_check=services.followup_visit_check,
        )
        crf.register(
            "end_of_study",
            title="End of study",
            model=models.EndOfStudy,
            form_class=forms.EndOfStudyForm,
            # A withdrawn patient's record is closed with the withdrawal reason.
            allowed_after_withdrawal=True,
        )
