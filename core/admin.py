"""What every admin page that edits audited data asks: a reason for the change (21 CFR
11.10(e)), kept on the audit-trail row. Used by trial's study-configuration admin and the user
admin (accounts); the trail is written by their services and audit's signals."""

from django import forms

REASON_REQUIRED = (
    "Give a reason for this change: it is kept in the audit trail with the old and new values."
)


class ReasonForChangeForm(forms.ModelForm):
    """An admin change form that asks why (21 CFR 11.10(e)): required when an existing record
    is edited, not when one is added. A missing reason re-shows the form with what was typed."""

    reason_for_change = forms.CharField(
        label="Reason for change",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Required when changing an existing record; kept in the audit trail.",
    )

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is not None and not cleaned.get("reason_for_change", "").strip():
            self.add_error("reason_for_change", REASON_REQUIRED)
        return cleaned

    def reason(self) -> str:
        return self.cleaned_data.get("reason_for_change", "").strip()
