"""The trail records a value as the database keeps it, so one change's new value is the next
change's old value, and a signature's hash over a just-saved record equals the hash over the
same record read back."""

from decimal import Decimal

from audit.models import AuditEntry
from audit.services import snapshot
from patients.services import crf_save

from ..factories import complete_screening


def test_a_decimal_typed_with_fewer_places_is_recorded_as_stored(screening_visit, andrologist):
    complete_screening(screening_visit, andrologist)
    hormones = screening_visit.labs_hormoneprofile_set.get()
    hormones.fsh = Decimal("24.1")  # as a form cleans "24.1"
    crf_save(record=hormones, user=andrologist, reason="Lab report re-read")
    hormones.fsh = Decimal("7.5")
    crf_save(record=hormones, user=andrologist, reason="Wrong patient's report")
    changes = AuditEntry.objects.filter(field_name="fsh", action="update").order_by("pk")
    assert [(c.old_value, c.new_value) for c in changes] == [("22.50", "24.10"), ("24.10", "7.50")]
    hormones.refresh_from_db()
    in_memory = snapshot(hormones, readable=False)
    hormones.fsh = Decimal("7.5")
    assert snapshot(hormones, readable=False) == in_memory
