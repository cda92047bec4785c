"""Write guards: rules other apps impose on every CRF write, without the CRF code knowing
them (e.g. monitoring registers "a signed visit is locked"). Each guard raises
ValidationError with a message for the user.

A record is a CRF record (it has a `visit`) or an entry of a patient's log (concomitant
medications: a `patient`, no visit); `dated_fields` names the dates a guard may check."""

from collections.abc import Callable

_guards: list[Callable] = []


def register(guard: Callable) -> None:
    if guard not in _guards:
        _guards.append(guard)


def check_write(*, record) -> None:
    for guard in _guards:
        guard(record=record)
