from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Patients"

    def ready(self):
        from audit import integrity as restore
        from core import crf

        from . import forms, models
        from .integrity import status_check

        # A restored database: the stored stage and flags still match the records.
        restore.register_check(status_check)

        crf.register(
            "eligibility",
            title="Eligibility",
            model=models.Eligibility,
            form_class=forms.EligibilityForm,
        )
        crf.register(
            "medical_history",
            title="Medical & marital history",
            model=models.MedicalHistory,
            form_class=forms.MedicalHistoryForm,
        )
        crf.register(
            "examination",
            title="Clinical examination",
            model=models.Examination,
            form_class=forms.ExaminationForm,
        )
        # Genetic tests and biopsy are often done before the patient enters the study.
        crf.register(
            "karyotype",
            title="Karyotype",
            model=models.Karyotype,
            form_class=forms.KaryotypeForm,
            may_precede_consent=True,
        )
        crf.register(
            "azf",
            title="AZF microdeletion",
            model=models.AzfMicrodeletion,
            form_class=forms.AzfMicrodeletionForm,
            may_precede_consent=True,
        )
        crf.register(
            "biopsy",
            title="Testicular biopsy",
            model=models.Biopsy,
            form_class=forms.BiopsyForm,
            may_precede_consent=True,
        )
