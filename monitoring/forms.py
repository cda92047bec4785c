from django import forms

from audit.forms import PERIOD_LIMITS, PeriodInOrderMixin
from core.forms import DATE_INPUT, HelperForm
from core.submissions import form_token_field

from .models import Signature, SignatureAgreement


class QueryOpenForm(HelperForm, forms.Form):
    field_name = forms.ChoiceField(label="Field", required=False)
    question = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    form_token = form_token_field()

    def __init__(self, *args, record, **kwargs):
        super().__init__(*args, **kwargs)
        fields = [
            (f.name, str(f.verbose_name))
            for f in type(record)._meta.concrete_fields
            if f.editable and f.name not in ("visit", "created_by", "updated_by")
        ]
        self.fields["field_name"].choices = [("", "The whole form")] + fields


class QueryReplyForm(HelperForm, forms.Form):
    text = forms.CharField(
        label="Message", widget=forms.Textarea(attrs={"rows": 3}), required=False
    )


class SignForm(HelperForm, forms.Form):
    """Both signature components are asked every time (21 CFR 11.200, strictest reading). A
    first-time signer also accepts the signature agreement (the service enforces it)."""

    username = forms.CharField(
        label="User name",
        help_text="Your own: a signature is made by the signed-in user only.",
    )
    password = forms.CharField(widget=forms.PasswordInput)
    meaning = forms.ChoiceField(
        choices=Signature.Meaning.choices,
        widget=forms.RadioSelect,
        initial=Signature.Meaning.INVESTIGATOR_APPROVAL,
    )
    agree = forms.BooleanField(
        label=SignatureAgreement.STATEMENT,
        required=False,
        help_text="Asked once, before your first electronic signature; it is kept on record.",
    )

    def __init__(self, *args, first_signature: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not first_signature:
            del self.fields["agree"]


class UnlockForm(forms.Form):
    reason = forms.CharField(label="Reason for unlocking", widget=forms.Textarea(attrs={"rows": 3}))


class UserUnlockForm(forms.Form):
    reason = forms.CharField(
        label="Reason for unlocking",
        max_length=500,
        help_text="e.g. 'Phoned the user: mistyped password, identity checked'.",
    )


class AccessReviewForm(HelperForm, forms.Form):
    field_wrapper = "col-md-8"  # beside its button (monitoring/user_access.html)
    note = forms.CharField(
        label="Review note",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What you checked, found and did (e.g. 'bob deactivated: left the study').",
    )


# ---- audit-trail review ----------------------------------------------------------------------


class AuditReviewForm(PeriodInOrderMixin, HelperForm, forms.Form):
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
