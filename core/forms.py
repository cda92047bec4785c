"""The CRF form base: one definition of sections feeds the crispy layout (and the PDF); and the
one way every form is rendered (`HelperForm`)."""

from crispy_forms.bootstrap import InlineRadios
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Div, Fieldset, Layout, Row
from django import forms
from django.utils.functional import cached_property

from core.limits import format_limit

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def loaded_version_field() -> forms.IntegerField:
    """The record's version when the page was loaded (audit.concurrency.record_version): a
    save from an older version keeps what others changed meanwhile, or names the fields both
    changed. The view gives it as `initial`."""
    return forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)


class HelperForm:
    """The house way to render a form, as the CRFs are: the template writes the <form>, its
    {% csrf_token %} and its buttons, and `{% crispy form %}` the fields, laid out by the
    form's crispy `helper`: by default every field in order, one under the other, each in a
    <div class="`field_wrapper`"> when the form names one (a filter bar's "col-auto"); a form
    arranges them otherwise by overriding `get_layout()`. Mixed in before the Django form."""

    field_wrapper = ""

    def get_layout(self) -> Layout:
        if self.field_wrapper:
            return Layout(*(Div(name, css_class=self.field_wrapper) for name in self.fields))
        return Layout(*self.fields)

    @cached_property
    def helper(self) -> FormHelper:
        # Built when the template first renders the form, with its fields as the view left them.
        helper = FormHelper()
        helper.form_tag = False
        helper.disable_csrf = True
        helper.layout = self.get_layout()
        return helper


def limits_help(limits) -> str:
    parts = []
    if limits.hard_min is not None or limits.hard_max is not None:
        parts.append(f"plausible {format_limit(limits.hard_min)}-{format_limit(limits.hard_max)}")
    if limits.soft_min is not None or limits.soft_max is not None:
        lo = format_limit(limits.soft_min) if limits.soft_min is not None else ""
        hi = format_limit(limits.soft_max) if limits.soft_max is not None else ""
        parts.append(
            f"expected {lo}-{hi}" if lo and hi else f"expected {'>= ' + lo if lo else '<= ' + hi}"
        )
    unit = f" {limits.unit}" if limits.unit else ""
    return ("; ".join(parts) + unit) if parts else ""


class CrfForm(forms.ModelForm):
    """Base of every CRF form.

    Subclasses set `sections = [("Section title", ["field", ...]), ...]` in paper-CRF order.
    Radios replace dropdowns for short code lists (one click, visible at a glance). When an
    existing record is edited, a reason for the change is required (audit trail)."""

    sections: list[tuple[str, list[str]]] = []
    reason_for_change = forms.CharField(
        label="Reason for change",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required when you change data already saved (audit trail).",
    )

    loaded_version = loaded_version_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = self.instance.pk is not None
        if not self.editing:
            del self.fields["reason_for_change"]
        else:
            self.fields["reason_for_change"].required = True
        for name, limits in getattr(self._meta.model, "limits", {}).items():
            if name in self.fields:
                hint = limits_help(limits)
                existing = self.fields[name].help_text
                self.fields[name].help_text = (
                    f"{existing} ({hint})" if existing and hint else existing or hint
                )
        for name, field in self.fields.items():
            model_label = self._model_label(name)
            if model_label and len(model_label) > 1 and model_label[1].isupper():
                field.label = model_label  # "pH", "FSH (IU/L)": Django's capfirst would say "PH"
            if isinstance(field, forms.DateField):
                field.widget = DATE_INPUT
            if isinstance(
                field, forms.TypedChoiceField | forms.ChoiceField
            ) and self._is_short_choice(field):
                field.widget = forms.RadioSelect(choices=field.choices)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = self.build_layout()

    def _model_label(self, name: str) -> str | None:
        try:
            return str(self._meta.model._meta.get_field(name).verbose_name)
        except Exception:  # form-only fields (reason_for_change, units)
            return None

    @staticmethod
    def _is_short_choice(field) -> bool:
        choices = [c for c in field.choices if c[0] != ""]
        return 0 < len(choices) <= 4

    def build_layout(self) -> Layout:
        parts = []
        for title, names in self.sections:
            columns = []
            for name in names:
                if name not in self.fields:
                    continue
                if isinstance(self.fields[name].widget, forms.RadioSelect):
                    columns.append(Column(InlineRadios(name), css_class="col-md-6 col-xl-4"))
                else:
                    columns.append(Column(name, css_class="col-md-6 col-xl-4"))
            # A grid rather than one long column: a section fits on one screen.
            parts.append(Fieldset(title, Row(*columns), css_class="crf-section"))
        if "reason_for_change" in self.fields:
            parts.append(Div("reason_for_change", css_class="border-top pt-3 mt-3"))
        # Hidden fields (the version, a create form's token) whatever the sections say.
        parts += [n for n, f in self.fields.items() if isinstance(f.widget, forms.HiddenInput)]
        return Layout(*parts)


def show_current_version(form: forms.BaseForm, version: int) -> None:
    """After a conflict the form is shown again with the record's version now, so saving it
    again is a deliberate "keep mine" (it carries the user's values, not the stale ones)."""
    form.data = form.data.copy()
    form.data["loaded_version"] = str(version)


def apply_validation_error(form: forms.BaseForm, error) -> None:
    """Show a service-layer ValidationError on the form: on its field when the form has one,
    at the top otherwise. The form keeps everything the user typed."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            target = name if name in form.fields else None
            for e in errors:
                form.add_error(target, e)
    else:
        form.add_error(None, error)
