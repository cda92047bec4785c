"""The CRF registry: form code -> model, form class and title.

The protocol's visit definitions name forms by code (data); each app registers the CRFs it
implements (code) in its AppConfig.ready(). The patient matrix, the system check and, later,
PDFs and exports read this one registry, so a new form plugs in without touching them.

An app may also act on another app's form after each save (`on_saved`), from its own ready():
the follow-up schedule follows the injection form that labs registers.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CrfDefinition:
    code: str
    title: str
    model: type
    form_class: type
    # Historical forms (e.g. a biopsy done years ago) may carry a date before consent.
    may_precede_consent: bool = False
    # The end-of-study form must still be recordable once consent is withdrawn.
    allowed_after_withdrawal: bool = False
    # Rules across forms, run by crf_save before saving: cross_form_check(record=) raises
    # ValidationError (model clean() has no visit yet when the form validates).
    cross_form_check: Callable | None = None


_registry: dict[str, CrfDefinition] = {}
_on_saved: dict[str, list[Callable]] = {}


def register(
    code: str,
    *,
    title: str,
    model: type,
    form_class: type,
    may_precede_consent: bool = False,
    allowed_after_withdrawal: bool = False,
    cross_form_check: Callable | None = None,
) -> None:
    _registry[code] = CrfDefinition(
        code,
        title,
        model,
        form_class,
        may_precede_consent,
        allowed_after_withdrawal,
        cross_form_check,
    )
    model.crf_code = code
    model.crf_title = title


def get(code: str) -> CrfDefinition:
    return _registry[code]


def is_registered(code: str) -> bool:
    return code in _registry


def all_definitions() -> list[CrfDefinition]:
    return list(_registry.values())


def on_saved(code: str, hook: Callable) -> None:
    """Call `hook(record=, user=, created=)` after each save of form `code`, inside the save's
    transaction (patients.services.crf_save), in the order of registration. The form need not
    be registered yet: apps' ready() run in INSTALLED_APPS order."""
    hooks = _on_saved.setdefault(code, [])
    if hook not in hooks:
        hooks.append(hook)


def saved(*, record, user, created: bool) -> None:
    """Run the on_saved hooks of the record's form (crf_save calls it after the audited save)."""
    for hook in _on_saved.get(record.crf_code, ()):
        hook(record=record, user=user, created=created)
