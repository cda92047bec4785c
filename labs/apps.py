from django.apps import AppConfig


class LabsConfig(AppConfig):
    name = "labs"
    verbose_name = "Laboratory"

    def ready(self):
        from core import crf

        from . import forms, models

        crf.register(
            "semen_analysis",
            title="Semen analysis",
            model=models.SemenAnalysis,
            form_class=forms.SemenAnalysisForm,
        )
        crf.register(
            "hormones",
            title="Hormones",
            model=models.HormoneProfile,
            form_class=forms.HormoneProfileForm,
        )
        crf.register(
            "bm_aspirate",
            title="Bone-marrow aspirate",
            model=models.BoneMarrowAspirate,
            form_class=forms.BoneMarrowAspirateForm,
        )
        crf.register(
            "msc_preparation",
            title="MSC preparation",
            model=models.MscPreparation,
            form_class=forms.MscPreparationForm,
        )
        crf.register(
            "injection",
            title="Injection",
            model=models.Injection,
            form_class=forms.InjectionForm,
            # Its date is the procedure date: followup, which owns the schedule, creates or
            # moves the follow-up visits when it is saved (crf.on_saved, in followup's ready()).
        )
