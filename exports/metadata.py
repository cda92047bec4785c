"""What each CRF holds, read from the CRF registry (core.crf) and nothing else: the form's
`sections` (the one layout definition, shared with the web form), the model field behind each
name (type, length, code list), the field's Limits (unit, plausible and expected ranges).

The filled and blank PDFs, the annotated CRF, the CSV exports, the data dictionary and the ODM
metadata all read `crf_layout()`, so a field added to a form's sections appears in every one
of them without touching a template."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from django.db import models

from core import choices as shared_choices
from core import crf
from core.limits import Limits, format_limit

# LOINC codes given by STANDARDS.md §2.6 (confirm each against loinc.org before locking).
# Keyed by (form code, variable): a form of another protocol simply has none.
LOINC = {
    ("hormones", "fsh"): "15067-2",
    ("hormones", "lh"): "10501-5",
    ("hormones", "testosterone"): "2986-8",
    ("semen_analysis", "abstinence_days"): "10587-4",
    ("semen_analysis", "volume_ml"): "3160-9",
    ("semen_analysis", "concentration"): "9780-8",
    ("semen_analysis", "non_progressive_pct"): "10620-3",
    ("semen_analysis", "immotile_pct"): "10611-2",
    ("semen_analysis", "normal_forms_pct"): "10622-9",
}

# ODM 1.3.2 DataType of each kind of model field (subclasses before their parents).
_DATA_TYPES: list[tuple[type, str]] = [
    (models.BooleanField, "boolean"),
    (models.DecimalField, "float"),
    (models.FloatField, "float"),
    (models.IntegerField, "integer"),
    (models.DateTimeField, "datetime"),
    (models.DateField, "date"),
    (models.TimeField, "time"),
]


def _range_text(low, high) -> str:
    if low is not None and high is not None:
        return f"{format_limit(low)} - {format_limit(high)}"
    if low is not None:
        return f">= {format_limit(low)}"
    if high is not None:
        return f"<= {format_limit(high)}"
    return ""


@dataclass(frozen=True)
class CrfItem:
    """One field of one CRF, as the paper form, the PDF and the exports describe it."""

    form_code: str
    name: str  # the variable name (model field name)
    label: str
    data_type: str  # ODM DataType: text, integer, float, date, datetime, time, boolean
    length: int | None
    decimals: int | None
    unit: str
    choices: tuple[tuple[str, str], ...]
    codelist: str  # name of the code list ("NY", "Examination.Consistency"), "" if none
    limits: Limits | None
    required: bool
    # False for inputs the form converts and does not keep (testosterone unit).
    stored: bool
    help_text: str = ""
    loinc: str = ""

    @property
    def is_coded(self) -> bool:
        return bool(self.choices)

    @property
    def hard_range(self) -> str:
        return _range_text(self.limits.hard_min, self.limits.hard_max) if self.limits else ""

    @property
    def soft_range(self) -> str:
        return _range_text(self.limits.soft_min, self.limits.soft_max) if self.limits else ""

    @property
    def type_label(self) -> str:
        if self.data_type == "float" and self.length:
            return f"float({self.length},{self.decimals})"
        if self.data_type == "text" and self.length:
            return f"text({self.length})"
        return self.data_type

    @property
    def codelist_text(self) -> str:
        return " | ".join(f"{code}={label}" for code, label in self.choices)

    def decode(self, code) -> str:
        """The label of a coded value ("Y" -> "Yes"); "" when the item is not coded."""
        if not self.choices or code in (None, ""):
            return ""
        return dict(self.choices).get(str(code), str(code))

    def coded(self, value) -> str:
        """The value as exported (CSV, ODM): codes, ISO dates, UTC date-times, '.' decimals."""
        if value is None or value == "":
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(value, date | time):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        if hasattr(value, "storage") and hasattr(value, "name"):  # FieldFile
            return value.name or ""
        return str(value)

    def display(self, value) -> str:
        """The value as a monitor reads it on the PDF."""
        if value is None or value == "":
            return ""
        if self.choices:
            return self.decode(value)
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%d %b %Y %H:%M UTC")
        if isinstance(value, date):
            return value.strftime("%d %b %Y")
        return self.coded(value)

    def display_text(self, text: str) -> str:
        """An audit-trail value (stored as text) as the monitor reads it."""
        if text in (None, ""):
            return "(empty)"
        return f"{self.decode(text)} [{text}]" if self.choices else text


@dataclass(frozen=True)
class CrfSection:
    title: str
    items: tuple[CrfItem, ...]


@dataclass(frozen=True)
class CrfLayout:
    code: str
    title: str
    model: type
    sections: tuple[CrfSection, ...]

    @property
    def items(self) -> tuple[CrfItem, ...]:
        """Every item the database keeps, in the order of the paper CRF."""
        return tuple(i for s in self.sections for i in s.items if i.stored)

    def item(self, name: str) -> CrfItem | None:
        for section in self.sections:
            for item in section.items:
                if item.name == name:
                    return item
        return None


def _shared_code_lists(model) -> dict[tuple, str]:
    """Known code lists by content: core.choices (NY, Laterality) and the model's own
    TextChoices (Examination.Consistency), so identical lists get one name."""
    named = {}
    for name, value in vars(shared_choices).items():
        shared = isinstance(value, type) and issubclass(value, models.Choices)
        if shared and value.__module__ == shared_choices.__name__:
            named[tuple(value.choices)] = name
    for klass in reversed(model.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, type) and issubclass(value, models.Choices):
                named.setdefault(tuple(value.choices), f"{klass.__name__}.{name}")
    return named


def _model_field(model, name):
    try:
        return model._meta.get_field(name)
    except Exception:  # a form-only input (e.g. the testosterone unit)
        return None


def _data_type(field) -> tuple[str, int | None, int | None]:
    for klass, data_type in _DATA_TYPES:
        if isinstance(field, klass):
            if isinstance(field, models.DecimalField):
                return data_type, field.max_digits, field.decimal_places
            return data_type, None, None
    return "text", getattr(field, "max_length", None), None


def _label(form_field, name: str) -> str:
    return str(form_field.label) if form_field.label else name.replace("_", " ").capitalize()


def _item(definition, form_field, name: str, named_lists: dict) -> CrfItem:
    model = definition.model
    field = _model_field(model, name)
    limits = getattr(model, "limits", {}).get(name)
    if field is not None:
        data_type, length, decimals = _data_type(field)
        choices = tuple((str(c), str(label)) for c, label in field.flatchoices if c != "")
        help_text = str(field.help_text or "")
    else:
        data_type, length, decimals = "text", None, None
        raw = getattr(form_field, "choices", ()) or ()
        choices = tuple((str(c), str(label)) for c, label in raw if c != "")
        help_text = str(form_field.help_text or "")
    codelist = ""
    if choices:
        codelist = named_lists.get(choices, f"{definition.code}.{name}")
    return CrfItem(
        form_code=definition.code,
        name=name,
        label=_label(form_field, name),
        data_type=data_type,
        length=length,
        decimals=decimals,
        unit=limits.unit if limits else "",
        choices=choices,
        codelist=codelist,
        limits=limits,
        required=bool(form_field.required),
        stored=field is not None,
        help_text=help_text,
        loinc=LOINC.get((definition.code, name), ""),
    )


def crf_layout(code: str) -> CrfLayout:
    """The layout of one registered CRF: its form's sections, each field described."""
    definition = crf.get(code)
    form = definition.form_class()  # unbound: labels exactly as the web form shows them
    named_lists = _shared_code_lists(definition.model)
    sections = []
    for title, names in definition.form_class.sections:
        items = tuple(
            _item(definition, form.fields[name], name, named_lists)
            for name in names
            if name in form.fields  # the web form skips unknown names too
        )
        sections.append(CrfSection(str(title), items))
    return CrfLayout(
        code=definition.code,
        title=definition.title,
        model=definition.model,
        sections=tuple(sections),
    )


def all_layouts() -> list[CrfLayout]:
    return [crf_layout(d.code) for d in crf.all_definitions()]


def oid_part(text: str) -> str:
    """An OID fragment: upper case letters, digits and underscores ("10^6/mL" -> "10_6_ML")."""
    return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_") or "X"
