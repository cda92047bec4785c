from django import forms

from core.forms import DATE_INPUT, CrfForm, HelperForm
from core.submissions import form_token_field

from .models import AdverseEvent, ConcomitantMedication, EndOfStudy, FollowUpVisit
from .services import AE_FIELDS, CM_FIELDS


class FollowUpVisitForm(CrfForm):
    sections = [
        ("Visit", ["assessment_date"]),
        ("Testicular volume", ["volume_method", "left_volume_ml", "right_volume_ml"]),
        ("Sexual function (patient-reported)", ["sexual_function", "libido", "iief5_score"]),
        (
            "Since the last visit",
            ["concomitant_medications_taken", "adverse_events_since_last_visit"],
        ),
    ]

    class Meta:
        model = FollowUpVisit
        exclude = ["visit"]
        labels = {"assessment_date": "Visit date"}


class EndOfStudyForm(CrfForm):
    sections = [
        ("End of study", ["assessment_date", "status"]),
        ("Details", ["withdrawal_reason", "last_contact_date", "comments"]),
    ]

    class Meta:
        model = EndOfStudy
        exclude = ["visit"]
        labels = {"assessment_date": "End-of-study date"}
        widgets = {
            "withdrawal_reason": forms.Textarea(attrs={"rows": 2}),
            "comments": forms.Textarea(attrs={"rows": 2}),
        }


class AdverseEventForm(CrfForm):
    form_token = form_token_field()  # creating: once per page (core.submissions)
    """The AE form of the patient's log (CDASH AE); the seriousness criteria are ICH E2A."""

    sections = [
        ("Event", ["term", "location", "onset_date", "end_date", "ongoing"]),
        ("Severity (CTCAE v5.0)", ["ctcae_grade"]),
        ("Seriousness (ICH E2A)", ["serious", *AdverseEvent.CRITERIA]),
        (
            "Relationship (investigator's assessment)",
            ["relation_aspiration", "relation_injection", "relation_product"],
        ),
        ("Action and outcome", ["action_taken", "other_action", "treatment_given", "outcome"]),
    ]

    class Meta:
        model = AdverseEvent
        fields = list(AE_FIELDS)
        widgets = {
            "term": forms.TextInput(attrs={"list": "ae-terms", "autocomplete": "off"}),
        }
        help_texts = {
            "term": "The event as the patient or clinician describes it; suggestions are "
            "CTCAE v5.0 terms.",
            "ctcae_grade": "1 mild, 2 moderate (limits instrumental ADL), 3 severe (limits "
            "self-care ADL or hospitalisation), 4 life-threatening, 5 death.",
            "serious": "Yes when any criterion below applies (severity is not seriousness).",
        }

    def data_for_service(self) -> dict:
        return {name: self.cleaned_data[name] for name in AE_FIELDS}


class AdverseEventVoidForm(HelperForm, forms.Form):
    reason = forms.CharField(
        label="Reason for voiding",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="e.g. entered for the wrong patient. The event stays in the log, struck out.",
    )


class ConcomitantMedicationForm(CrfForm):
    form_token = form_token_field()  # creating: once per page (core.submissions)
    """A medication of the patient's log (CDASH CM); coded later with WHODrug."""

    sections = [
        ("Medication", ["medication", "indication", "hormone_class"]),
        (
            "Dose and administration",
            ["dose", "dose_unit", "route", "route_other", "frequency", "frequency_other"],
        ),
        ("Dates", ["start_date", "end_date", "ongoing"]),
    ]

    class Meta:
        model = ConcomitantMedication
        fields = list(CM_FIELDS)
        widgets = {
            "medication": forms.TextInput(attrs={"list": "cm-names", "autocomplete": "off"}),
        }
        help_texts = {
            "medication": "Generic or brand name as the patient or the prescription gives it.",
            "indication": "Why it is taken, e.g. male infertility, hypogonadism, pain.",
            "dose": "Per administration; leave empty when it is not known.",
            "route_other": "Only when the route is Other.",
            "frequency_other": "Only when the frequency is Other, e.g. 3 times a week.",
            "start_date": "May precede the consent: a medication taken before the study is "
            "recorded too (prior medication).",
            "ongoing": "Still taken: leave the end date empty.",
        }

    def data_for_service(self) -> dict:
        return {name: self.cleaned_data[name] for name in CM_FIELDS}


class ConcomitantMedicationVoidForm(HelperForm, forms.Form):
    reason = forms.CharField(
        label="Reason for voiding",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="e.g. entered for the wrong patient. The medication stays in the log, struck "
        "out.",
    )


class UnscheduledVisitForm(HelperForm, forms.Form):
    planned_date = forms.DateField(
        label="Planned date",
        required=False,
        widget=DATE_INPUT,
        help_text="Optional: the visit is open for data entry at once either way.",
    )
