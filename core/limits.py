"""Plausible (hard) and expected (soft) limits, defined once per field.

A CRF model declares `limits = {"field": Limits(...)}`. The same object:
- rejects implausible values (model clean, hence the service layer and imports);
- sets min/max on the form input and the message shown on the field;
- flags unexpected values for review (patient page, form, later data queries and PDFs).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError


def format_limit(value) -> str:
    """A limit or value as people write it: 10, 2.5, 0.001 (no trailing zeros, no exponent for
    a Decimal). Shared by the messages here, the form's help texts and the data dictionary."""
    if isinstance(value, Decimal | float):
        return f"{value:g}" if isinstance(value, float) else format(value.normalize(), "f")
    return str(value)


@dataclass(frozen=True)
class Limits:
    hard_min: float | None = None
    hard_max: float | None = None
    soft_min: float | None = None
    soft_max: float | None = None
    unit: str = ""
    # Why the expected range is what it is (shown with the flag).
    note: str = ""

    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def hard_error(self, value, label: str) -> str | None:
        if value is None:
            return None
        lo, hi = self.hard_min, self.hard_max
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            if lo is not None and hi is not None:
                between = f"{format_limit(lo)} and {format_limit(hi)}"
                return f"{label} must be between {between}{self._unit()}."
            if lo is not None:
                return f"{label} cannot be below {format_limit(lo)}{self._unit()}."
            return f"{label} cannot be above {format_limit(hi)}{self._unit()}."
        return None

    def soft_flag(self, value, label: str) -> str | None:
        if value is None:
            return None
        lo, hi = self.soft_min, self.soft_max
        if lo is not None and value < lo:
            expected = (
                f"{format_limit(lo)}-{format_limit(hi)}"
                if hi is not None
                else f">= {format_limit(lo)}"
            )
        elif hi is not None and value > hi:
            expected = (
                f"{format_limit(lo)}-{format_limit(hi)}"
                if lo is not None
                else f"<= {format_limit(hi)}"
            )
        else:
            return None
        note = f" ({self.note})" if self.note else ""
        unit = self._unit()
        return (
            f"{label} {format_limit(value)}{unit} is outside the expected {expected}{unit}{note}."
        )


def field_label(model, name: str) -> str:
    label = str(model._meta.get_field(name).verbose_name)
    if len(label) > 1 and label[1].isupper():  # "pH", "FSH": keep as written
        return label
    return label[:1].upper() + label[1:]


def hard_limit_errors(instance) -> dict[str, str]:
    errors = {}
    for name, limits in getattr(instance, "limits", {}).items():
        message = limits.hard_error(getattr(instance, name), field_label(type(instance), name))
        if message:
            errors[name] = message
    return errors


def soft_limit_flags(instance) -> dict[str, str]:
    """{field: message} for every value outside its expected range."""
    flags = {}
    for name, limits in getattr(instance, "limits", {}).items():
        message = limits.soft_flag(getattr(instance, name), field_label(type(instance), name))
        if message:
            flags[name] = message
    return flags


def validate_hard_limits(instance) -> None:
    errors = hard_limit_errors(instance)
    if errors:
        raise ValidationError(errors)


def soft_limit_q(model):
    """A Q matching rows of `model` with any value outside its expected range (for filters)."""
    from django.db.models import Q

    q = Q(pk__in=[])
    for name, limits in getattr(model, "limits", {}).items():
        if limits.soft_min is not None:
            q |= Q(**{f"{name}__lt": limits.soft_min})
        if limits.soft_max is not None:
            q |= Q(**{f"{name}__gt": limits.soft_max})
    return q


def has_soft_limits(model) -> bool:
    return any(
        lim.soft_min is not None or lim.soft_max is not None
        for lim in getattr(model, "limits", {}).values()
    )
