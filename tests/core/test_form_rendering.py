"""One way to render a form: `{% crispy form %}` with the form's FormHelper (core.forms), as
the CRFs are; the template writes the <form>, its CSRF token and its buttons."""

import re
from pathlib import Path

from django import forms
from django.conf import settings
from django.template import Context, Template

from core.forms import HelperForm

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def test_no_template_renders_a_form_another_way():
    other_ways = re.compile(r"\|\s*crispy\b|\|\s*as_crispy_field\b|\{\{\s*\w*form\s*\}\}")
    found = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for match in other_ways.finditer(path.read_text())
    ]
    assert found == []


class _Form(HelperForm, forms.Form):
    name = forms.CharField(label="Name")
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea)


class _Bar(HelperForm, forms.Form):
    field_wrapper = "col-auto"
    site = forms.CharField(label="Site", required=False)


def _render(form) -> str:
    return Template("{% load crispy_forms_tags %}{% crispy form %}").render(Context({"form": form}))


def test_a_helper_form_renders_its_fields_in_order_without_form_tag_or_token():
    html = _render(_Form({"name": ""}))
    assert "<form" not in html and "csrfmiddlewaretoken" not in html
    assert html.index('id="id_name"') < html.index('id="id_note"')
    assert 'id="error_1_id_name"' in html and "This field is required." in html


def test_a_filter_bar_puts_each_field_in_its_column():
    assert re.search(r'<div\s+class="col-auto"\s*>\s*<div id="div_id_site"', _render(_Bar()))
