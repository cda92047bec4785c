"""core.models.AppendOnlyModel: one guard for every record that is never changed once written
(the audit trail, sign-in events, signatures, unlocks, SDV, access and audit-trail reviews)."""

import pytest

from audit.models import AuditEntry, AuthEvent
from core.models import AppendOnlyModel
from monitoring.models import (
    AccessReview,
    AuditTrailReview,
    Signature,
    SignatureAgreement,
    SignatureRevocation,
    SourceVerification,
)

MESSAGES = {
    AuditEntry: ("Audit entries cannot be changed.", "Audit entries cannot be deleted."),
    AuthEvent: (
        "Authentication events cannot be changed.",
        "Authentication events cannot be deleted.",
    ),
    Signature: ("A signature cannot be changed or re-pointed.", "A signature cannot be deleted."),
    SignatureRevocation: ("An unlock record cannot be changed.", None),
    AccessReview: ("An access review cannot be changed.", "An access review cannot be deleted."),
    SignatureAgreement: (
        "A signature agreement cannot be changed.",
        "A signature agreement cannot be deleted.",
    ),
    SourceVerification: (
        "A source verification cannot be changed.",
        "A source verification cannot be deleted.",
    ),
    AuditTrailReview: (
        "An audit-trail review cannot be changed.",
        "An audit-trail review cannot be deleted.",
    ),
}


def test_the_base_is_abstract_and_adds_no_field():
    assert AppendOnlyModel._meta.abstract
    assert AppendOnlyModel._meta.local_fields == []


@pytest.mark.parametrize("model", MESSAGES, ids=lambda m: m.__name__)
def test_each_append_only_record_states_its_own_refusals(model):
    assert issubclass(model, AppendOnlyModel)
    assert (model.change_refused, model.delete_refused) == MESSAGES[model]


@pytest.mark.parametrize("model", MESSAGES, ids=lambda m: m.__name__)
def test_a_stored_row_cannot_be_saved_again_or_deleted(model):
    row = model()
    row.pk = 1  # as if read from the table: nothing reaches the database
    with pytest.raises(PermissionError, match=f"^{MESSAGES[model][0]}$"):
        row.save()
    if MESSAGES[model][1] is not None:
        with pytest.raises(PermissionError, match=f"^{MESSAGES[model][1]}$"):
            row.delete()


@pytest.mark.django_db
def test_a_new_row_is_written_once_and_then_refused():
    event = AuthEvent(kind=AuthEvent.Kind.LOGIN, username="alice")
    event.save()
    assert AuthEvent.objects.filter(pk=event.pk).exists()
    event.detail = "changed"
    with pytest.raises(PermissionError, match="Authentication events cannot be changed."):
        event.save()
    with pytest.raises(PermissionError, match="Authentication events cannot be deleted."):
        event.delete()
    assert AuthEvent.objects.get(pk=event.pk).detail == ""
