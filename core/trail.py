"""The audit trail's writers, for the one app below `audit` that writes audited rows: trial
(study configuration: protocol, sites, memberships, visit definitions, consent versions).
`audit` registers its `audited_save` and `audited_delete` here when it starts
(AuditConfig.ready()), so trial saves through the trail without importing it. Apps above
`audit` call audit.services directly."""

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

_writers: dict[str, Callable] = {}


def register(*, save: Callable, delete: Callable) -> None:
    _writers.update(save=save, delete=delete)


def _writer(name: str) -> Callable:
    try:
        return _writers[name]
    except KeyError:
        raise ImproperlyConfigured(
            "No audit-trail writer is registered: is the audit app installed?"
        ) from None


def trail_save(instance, *, user, reason: str = "") -> list:
    """Save the row and write its audit rows, as one unit (audit.services.audited_save)."""
    return _writer("save")(instance, user=user, reason=reason)


def trail_delete(instance, *, user, reason: str = "") -> list:
    """Delete the row and keep its values in the trail (audit.services.audited_delete)."""
    return _writer("delete")(instance, user=user, reason=reason)
