"""Claimed jobs: a row that one worker at a time works on (a PDF job, a reminder e-mail).

A worker claims the row with one conditional UPDATE, from a free status to the held status,
or from the held status when the claim is stale: its holder gave no sign of life (the claim
time, a heartbeat) for longer than `stale_after`, so the worker was killed and another may
take the row over. Two workers never both win: PostgreSQL re-checks the WHERE of the second
UPDATE once the first has committed, and the row no longer matches it.

Every claim changes the row's token (an attempt count, the claim time). The holder's later
writes go through `held_by(token)`, so once its claim was taken over they change nothing."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.db import models
from django.db.models import Q, QuerySet


@dataclass(frozen=True)
class JobClaim:
    """The claim rule of one kind of job row."""

    model: type[models.Model]
    free: tuple[str, ...]  # the statuses a worker may claim
    held: str  # the status of a claimed row
    token: str  # the field every claim changes
    alive: tuple[str, ...]  # the holder's last sign of life: the first of these that is set
    stale_after: Callable[[], timedelta]  # read when used (settings may change in tests)
    status_field: str = "status"

    def _rows(self) -> QuerySet:
        return self.model._default_manager.all()

    def stale(self, *, now: datetime) -> Q:
        """Held rows whose holder gave no sign of life since `now - stale_after()`."""
        before = now - self.stale_after()
        unset: dict[str, bool] = {}
        older = []
        for name in self.alive:
            older.append(Q(**unset, **{f"{name}__lt": before}))
            unset[f"{name}__isnull"] = True
        return Q(**{self.status_field: self.held}) & reduce(or_, older)

    def claimable(self, *, now: datetime, take_stale: bool = True) -> Q:
        free = Q(**{f"{self.status_field}__in": list(self.free)})
        return free | self.stale(now=now) if take_stale else free

    def claim(self, *, pk: int, now: datetime, take_stale: bool = True, **fields: Any) -> bool:
        """Take the row (free, or stale unless `take_stale` is False) with one conditional
        UPDATE that sets the held status and `fields` (which change the token)."""
        rows = self._rows().filter(self.claimable(now=now, take_stale=take_stale), pk=pk)
        return rows.update(**{self.status_field: self.held}, **fields) == 1

    def held_by(self, *, pk: int, token: Any) -> QuerySet:
        """The row while the claim that set `token` still holds it."""
        return self._rows().filter(pk=pk, **{self.status_field: self.held, self.token: token})

    def take_over(self, *, pk: int, token: Any, **fields: Any) -> bool:
        """Take a held row from the claim that set `token` (read and judged abandoned by the
        caller): one conditional UPDATE, so only one taker wins and the old holder's writes
        no longer match."""
        return (
            self.held_by(pk=pk, token=token).update(**{self.status_field: self.held}, **fields) == 1
        )

    def stale_at(self, row: dict) -> datetime | None:
        """When the claim of a row read as a dict (with the `alive` fields) becomes stale;
        None when it has no sign of life at all."""
        since = next((row[name] for name in self.alive if row[name] is not None), None)
        return None if since is None else since + self.stale_after()

    def is_stale(self, row: dict, *, now: datetime) -> bool:
        """`stale()` for a row already read."""
        due = self.stale_at(row)
        return due is not None and due < now
