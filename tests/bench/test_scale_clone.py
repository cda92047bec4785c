"""bench/scale.py's clone: copies of a patient made in SQL, with the audit triggers on, are
what the application's own checks accept (hash chains, signatures, SDV marks)."""

import sys
from pathlib import Path

import pytest

from ..factories import complete_screening

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import scale  # noqa: E402

pytestmark = pytest.mark.postgres


@pytest.fixture
def signed_patient(rf, screening_visit, andrologist, monitor):
    from monitoring.models import Signature
    from monitoring.services import query_open, signature_sign, source_verify

    complete_screening(screening_visit, andrologist)
    request = rf.post("/")
    request.user = andrologist
    signature_sign(
        request=request,
        patient=screening_visit.patient,
        visit=screening_visit,
        username="alice",
        password="correct-horse-battery",
        meaning=Signature.Meaning.INVESTIGATOR_APPROVAL,
        user=andrologist,
        agree=True,
    )
    hormones = screening_visit.labs_hormoneprofile_set.get()
    source_verify(record=hormones, user=monitor)
    query_open(record=hormones, field_name="fsh", question="Please check FSH.", user=monitor)
    return screening_visit.patient


def test_copies_keep_the_trail_chained_and_the_signatures_valid(signed_patient):
    from audit.chain import verify_audit_trail
    from audit.models import AuditEntry
    from monitoring.integrity import signature_check
    from monitoring.models import DataQuery, Signature, SourceVerification
    from monitoring.selectors import SdvStatus, sdv_status
    from patients.models import Patient

    trail = AuditEntry.objects.filter(patient=signed_patient).count()

    scale.clone(3, batch=2)

    copies = Patient.objects.exclude(pk=signed_patient.pk).order_by("number")
    assert [p.study_id for p in copies] == ["BEN-002", "BEN-003"]
    assert len({p.uuid for p in Patient.objects.all()}) == 3
    for copy in copies:
        assert AuditEntry.objects.filter(patient=copy).count() == trail
        assert Signature.objects.get(patient=copy).visit.patient == copy
        assert DataQuery.objects.get(patient=copy).visit.patient == copy
        mark = SourceVerification.objects.get(patient=copy)
        record = copy.visits.get(definition__code="SCR").labs_hormoneprofile_set.get()
        assert mark.record_id == record.pk
        assert sdv_status(record, mark) == SdvStatus.VERIFIED
    # The capture trigger ran on every copied row and had nothing to add.
    assert not AuditEntry.objects.filter(user_name__startswith="database:").exists()
    assert verify_audit_trail().intact
    assert signature_check().passed
