from datetime import date

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from core import crf
from core.forms import DATE_INPUT, HelperForm

# A period searched or reviewed lies within the dates a trial can have. Its end is read as
# "before the next day's midnight" (the trail's search, monitoring.audit_review), which has no
# meaning after 9999-12-31.
PERIOD_LIMITS = [
    MinValueValidator(date(1900, 1, 1), "Enter a date from 1900 on."),
    MaxValueValidator(date(2999, 12, 31), "Enter a date before the year 3000."),
]


class PeriodInOrderMixin:
    """A search over `date_from`..`date_to` (the trail's search, the audit review): the end
    may not come before the start."""

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("date_from")
            and cleaned.get("date_to")
            and cleaned["date_from"] > cleaned["date_to"]
        ):
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned


class AuditSearchForm(PeriodInOrderMixin, HelperForm, forms.Form):
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
