from django import forms
from django.contrib.auth.forms import AuthenticationForm

from core.forms import HelperForm


class SecondFactorForm(HelperForm, forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code your authenticator app shows now, or one of your recovery "
        "codes (each works once).",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


class EnrolmentForm(HelperForm, forms.Form):
    code = forms.CharField(
        label="First code from the app",
        max_length=10,
        help_text="Six digits; a new one every 30 seconds.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class SecondFactorResetForm(forms.Form):
    reason = forms.CharField(
        label="Reason for the reset",
        max_length=500,
        help_text="e.g. 'Phone lost; identity checked in person'.",
    )


class LoginForm(HelperForm, AuthenticationForm):
    """Django's password step, rendered the house way (templates/registration/login.html)."""
