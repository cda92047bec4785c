from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from core.choices import NY
from core.forms import DATE_INPUT, DATETIME_INPUT, CrfForm, HelperForm, loaded_version_field
from core.submissions import form_token_field
from core.uploads import NotAScan, identify_scan
from trial.models import ConsentVersion, StudySite
from trial.selectors import active_protocol

from .models import (
    AzfMicrodeletion,
    Biopsy,
    Consent,
    Eligibility,
    Examination,
    Karyotype,
    MedicalHistory,
    PatientIdentity,
)


class PatientEnrolForm(HelperForm, forms.Form):
    site = forms.ModelChoiceField(queryset=StudySite.objects.none())
    enrolment_date = forms.DateField(widget=DATE_INPUT, initial=timezone.localdate)
    date_of_birth = forms.DateField(widget=DATE_INPUT)
    full_name = forms.CharField(max_length=200, help_text="Kept apart from the clinical record.")
    phone = forms.CharField(max_length=40, required=False)
    national_id = forms.CharField(label="National id", max_length=40, required=False)
    address = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    form_token = form_token_field()

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        sites = StudySite.objects.for_user(user)
        self.fields["site"].queryset = sites
        if len(sites) == 1:
            self.fields["site"].initial = sites[0]


class IdentityForm(HelperForm, forms.ModelForm):
    reason_for_change = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    loaded_version = loaded_version_field()

    class Meta:
        model = PatientIdentity
        fields = ["full_name", "phone", "national_id", "address"]
        widgets = {"address": forms.Textarea(attrs={"rows": 2})}


class ConsentForm(HelperForm, forms.ModelForm):
    form_token = form_token_field()

    class Meta:
        model = Consent
        fields = [
            "consent_version",
            "signed_at",
            "obtained_by",
            "witness_name",
            "patient_copy_given",
            "document",
        ]
        widgets = {"signed_at": DATETIME_INPUT}

    def __init__(self, *args, patient, obtained_by_choices, upload_too_large=False, **kwargs):
        super().__init__(*args, **kwargs)
        # The upload handler dropped the file at the size limit (views.consent_create).
        self.upload_too_large = upload_too_large
        self.fields["consent_version"].queryset = ConsentVersion.objects.filter(
            protocol=patient.site.protocol, effective_date__lte=timezone.localdate()
        )
        self.fields["signed_at"].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        self.fields["obtained_by"].queryset = obtained_by_choices
        self.fields["obtained_by"].label_from_instance = lambda u: u.get_full_name() or u.username
        self.fields["document"].widget.attrs["accept"] = "application/pdf,image/jpeg,image/png"

    def clean_document(self):
        """What the bytes are decides, never the name or the declared type; the file is stored
        under a generated name with the extension of what it really is."""
        limit_mb = settings.CONSENT_UPLOAD_MAX_MB
        if self.upload_too_large:
            raise forms.ValidationError(
                f"The file is larger than {limit_mb} MB: scan the signed form at a lower "
                "resolution or as a PDF, and upload it again."
            )
        document = self.cleaned_data.get("document")
        if not document or not isinstance(document, UploadedFile):
            return document
        if document.size > limit_mb * 1024 * 1024:
            raise forms.ValidationError(f"The file is larger than {limit_mb} MB.")
        try:
            scan = identify_scan(document)
        except NotAScan as exc:
            raise forms.ValidationError(
                "Upload the signed form as a PDF, JPEG or PNG: this file is %(what)s.",
                code="invalid_scan",
                params={"what": exc.description},
            ) from exc
        document.content_type = scan.content_type  # stored as patients.models.signed_consent_path
        return document


class ConsentWithdrawForm(HelperForm, forms.Form):
    withdrawn_on = forms.DateField(label="Withdrawal date", widget=DATE_INPUT)
    withdrawal_reason = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 3}))


class EligibilityForm(CrfForm):
    """Asks the criteria of the protocol, in its words (Protocol.eligibility_criteria): the
    slots it does not use are not on the form, nor in the PDFs and exports built from it."""

    sections = [
        ("Assessment", ["assessment_date"]),
        ("Inclusion criteria (all must be Yes)", list(Eligibility.INCLUSION)),
        ("Exclusion criteria (all must be No)", list(Eligibility.EXCLUSION)),
    ]

    class Meta:
        model = Eligibility
        fields = ["assessment_date", *Eligibility.INCLUSION, *Eligibility.EXCLUSION]
        labels = {"assessment_date": "Date assessed"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.visit_id:
            criteria = self.instance.criteria()
        else:  # a blank form (blank CRF, data dictionary): the deployment's protocol
            protocol = active_protocol()
            criteria = protocol.criteria_by_slot() if protocol else {}
        for name in (*Eligibility.INCLUSION, *Eligibility.EXCLUSION):
            if name in criteria:
                field = self.fields[name]
                field.label = criteria[name]["text"]
                field.required = True
                field.choices = NY.choices  # no blank radio: every criterion is answered
                field.help_text = criteria[name]["code"]
            else:
                del self.fields[name]
        self.helper.layout = self.build_layout()


class MedicalHistoryForm(CrfForm):
    sections = [
        ("Taken on", ["assessment_date"]),
        (
            "Marital history",
            [
                "wife_age",
                "marriage_duration_years",
                "previous_marriage",
                "children_from_previous_marriage",
                "infertility_duration_years",
                "previous_icsi_tese",
            ],
        ),
        (
            "Andrological history",
            [
                "mumps_orchitis",
                "cryptorchidism",
                "cryptorchidism_side",
                "orchiopexy",
                "varicocele",
                "varicocele_treated",
                "chemo_radiotherapy",
                "testicular_trauma_torsion",
            ],
        ),
        (
            "Drugs that impair spermatogenesis",
            [
                "drug_antihypertensives",
                "drug_antidepressants",
                "drug_anabolic_steroids",
                "drug_other",
            ],
        ),
        ("General", ["smoking", "diabetes", "hypertension"]),
    ]

    class Meta:
        model = MedicalHistory
        exclude = ["visit"]
        labels = {"assessment_date": "Date taken"}


class ExaminationForm(CrfForm):
    sections = [
        ("Examined on", ["assessment_date"]),
        ("Anthropometry", ["height_cm", "weight_kg"]),
        (
            "General features",
            [
                "gigantism",
                "dwarfism",
                "myxedema",
                "klinefelter_habitus",
                "gynecomastia",
                "down_features",
            ],
        ),
        (
            "Local examination",
            [
                "volume_method",
                "left_volume_ml",
                "right_volume_ml",
                "left_consistency",
                "right_consistency",
                "left_varicocele",
                "right_varicocele",
                "left_vas",
                "right_vas",
                "cord_anomaly",
                "scrotal_swelling",
                "congenital_malformation",
            ],
        ),
    ]

    class Meta:
        model = Examination
        exclude = ["visit"]
        labels = {"assessment_date": "Date examined"}


class KaryotypeForm(CrfForm):
    sections = [("Karyotype", ["assessment_date", "result", "detail"])]

    class Meta:
        model = Karyotype
        exclude = ["visit"]
        labels = {"assessment_date": "Report date"}


class AzfMicrodeletionForm(CrfForm):
    sections = [("Y-chromosome AZF microdeletion", ["assessment_date", "result", "markers_tested"])]

    class Meta:
        model = AzfMicrodeletion
        exclude = ["visit"]
        labels = {"assessment_date": "Report date"}


class BiopsyForm(CrfForm):
    sections = [("Testicular biopsy", ["assessment_date", "side", "histology", "johnsen_score"])]

    class Meta:
        model = Biopsy
        exclude = ["visit"]
        labels = {"assessment_date": "Biopsy date"}
