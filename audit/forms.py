from datetime import date

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from core import crf
from core.forms import DATE_INPUT, HelperForm

# A period searched or reviewed lies within the dates a trial can have. Its end is read as
# "before the next day's midnight" (audit.review), which has no meaning after 9999-12-31.
PERIOD_LIMITS = [
    MinValueValidator(date(1900, 1, 1), "Enter a date from 1900 on."),
    MaxValueValidator(date(2999, 12, 31), "Enter a date before the year 3000."),
]


class AuditSearchForm(HelperForm, forms.Form):
    field_wrapper = "col-auto"  # each field a column of the bar
    study_id = forms.CharField(label="Study id", required=False)
    username = forms.CharField(label="User", required=False)
    form_code = forms.ChoiceField(label="Form", required=False)
    record_type = forms.ChoiceField(
        label="Records",
        required=False,
        choices=[
            ("", "All records"),
            ("clinical", "Clinical data"),
            # Protocol, sites, memberships, visit definitions, consent versions, users' roles:
            # rows without a patient, which administrators see.
            ("configuration", "Study configuration"),
        ],
    )
    date_from = forms.DateField(
        label="From", required=False, widget=DATE_INPUT, validators=PERIOD_LIMITS
    )
    date_to = forms.DateField(
        label="To", required=False, widget=DATE_INPUT, validators=PERIOD_LIMITS
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["form_code"].choices = [("", "Any form")] + sorted(
            (d.code, d.title) for d in crf.all_definitions()
        )

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("date_from")
            and cleaned.get("date_to")
            and cleaned["date_from"] > cleaned["date_to"]
        ):
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned


class AuditReviewForm(HelperForm, forms.Form):
    field_wrapper = "col-auto"  # each field a column of the bar
    site = forms.ChoiceField(label="Site", required=False)
    date_from = forms.DateField(
        label="From", required=False, widget=DATE_INPUT, validators=PERIOD_LIMITS
    )
    date_to = forms.DateField(
        label="To", required=False, widget=DATE_INPUT, validators=PERIOD_LIMITS
    )

    def __init__(self, *args, sites, default_period, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_period = default_period
        self.fields["site"].choices = [("", "All my sites")] + [(s.code, s.code) for s in sites]
        self.fields["date_from"].initial, self.fields["date_to"].initial = default_period

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("date_from")
            and cleaned.get("date_to")
            and cleaned["date_from"] > cleaned["date_to"]
        ):
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned

    def period(self) -> dict:
        """site_code, date_from, date_to: what was asked, the default period where a date is
        missing or the form is invalid (its errors are shown)."""
        start, end = self.default_period
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return {
            "site_code": data.get("site") or "",
            "date_from": data.get("date_from") or start,
            "date_to": data.get("date_to") or end,
        }


class AuditReviewRecordForm(HelperForm, forms.Form):
    """Recording the review shown: its site and period come back as hidden fields."""

    site = forms.CharField(required=False, widget=forms.HiddenInput)
    date_from = forms.DateField(widget=forms.HiddenInput, validators=PERIOD_LIMITS)
    date_to = forms.DateField(widget=forms.HiddenInput, validators=PERIOD_LIMITS)
    note = forms.CharField(
        label="Review note",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What you checked, found and did (e.g. 'late entries at BEN: site retrained').",
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("note", "The period's end is before its start: review it again.")
        return cleaned
