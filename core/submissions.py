"""Create forms that create once: a double click, a reload of the POST, or a retry after a
lost response returns the first result instead of a second patient, consent or entry.

The form carries a one-time token (`form_token`, made when the page is shown). Saving takes
the token with an INSERT on a unique column, in the same transaction as what it creates: a
second request with the same token waits for the first to commit (PostgreSQL holds it on
the unique index), then finds the token taken and is sent to the first result. If the first
failed (a validation error), its token was rolled back with it and the next try proceeds."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.db import IntegrityError, transaction

from .models import FormSubmission


def form_token_field() -> forms.UUIDField:
    return forms.UUIDField(widget=forms.HiddenInput, required=False, initial=uuid.uuid4)


@dataclass(frozen=True)
class Created:
    url: str  # where to send the user: the new record's page, or its list
    label: str  # what was created, for the message ("Patient BEN-004")


def create_once(
    *, token: uuid.UUID | None, user, create: Callable[[], Created]
) -> tuple[Created, bool]:
    """Run `create` once per token. Returns (result, created): created is False when this
    token was already used, and the result is then the first submission's."""
    if token is None:  # a client that sent no token: no protection, but no refusal either
        return create(), True
    try:
        with transaction.atomic():
            submission = FormSubmission.objects.create(token=token, user=user)
            result = create()
            submission.result_url, submission.result_label = result.url, result.label
            submission.save(update_fields=["result_url", "result_label"])
            return result, True
    except IntegrityError:
        first = FormSubmission.objects.filter(token=token, user=user).first()
        if first is None or not first.result_url:
            raise
        return Created(url=first.result_url, label=first.result_label), False


def already_saved(result: Created) -> str:
    return (
        f"This form had already been saved ({result.label}): you are seeing what that first "
        "save created. Nothing was created twice."
    )
