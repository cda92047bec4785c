"""Why a change is made (21 CFR 11.10(e)), for the writes that reach the audit trail without a
service passing the reason along: a user's roles, changed by Django's m2m machinery and
recorded by audit's signal receiver. As core.request_source says who and from where, this
says why, so the code asking for a reason (the admin, a command) needs nothing of `audit`.

A ContextVar: set for the duration of the `with change_reason(...)` block only."""

from contextlib import contextmanager
from contextvars import ContextVar

_change_reason = ContextVar("edc_change_reason", default="")


@contextmanager
def change_reason(reason: str):
    """The reason for the changes made inside (those a signal records, such as roles)."""
    token = _change_reason.set(reason)
    try:
        yield
    finally:
        _change_reason.reset(token)


def current_change_reason() -> str:
    return _change_reason.get()
