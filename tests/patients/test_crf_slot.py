"""The state of one CRF slot (patients.selectors.crf_slot), without HTTP: the record, whether
the consent allows entering the form (the rule crf_save applies, one function), the signature
that locks the visit, and what the user may do."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from followup.services import end_of_study_visit_open
from monitoring.models import Signature
from monitoring.selectors import SdvStatus
from monitoring.services import query_open, signature_sign
from patients.selectors import NoSuchSlot, crf_slot
from patients.services import consent_withdraw, crf_void

from ..conftest import give_consent
from ..factories import complete_screening, save_crf
from ..followup.factories import save as save_on


def _slot(user, visit, code="hormones", sequence=1):
    return crf_slot(user=user, patient=visit.patient, visit=visit, code=code, sequence=sequence)


def _withdraw(patient, user):
    consent_withdraw(
        consent=patient.consents.get(),
        withdrawn_on=timezone.localdate(),
        reason="No longer wishes to take part",
        user=user,
    )


def test_an_unknown_form_or_a_number_the_visit_does_not_hold_is_no_slot(
    screening_visit, andrologist
):
    with pytest.raises(NoSuchSlot, match="Unknown form"):
        _slot(andrologist, screening_visit, code="nope")
    with pytest.raises(NoSuchSlot, match="not part of this visit"):
        _slot(andrologist, screening_visit, sequence=2)
    with pytest.raises(NoSuchSlot, match="not part of this visit"):
        _slot(andrologist, screening_visit, code="injection")
    assert _slot(andrologist, screening_visit, code="semen_analysis", sequence=3).repeat == 3


def test_an_empty_slot_is_open_to_data_entry_staff_and_read_only_to_a_monitor(
    screening_visit, andrologist, monitor
):
    slot = _slot(andrologist, screening_visit)
    assert slot.record is None and slot.consent.state == "valid" and slot.lock is None
    assert slot.entry_open and slot.may_enter and slot.can_edit
    assert not slot.can_review and slot.queries() == [] and slot.sdv() is None
    assert slot.instance().visit == screening_visit and slot.instance().pk is None
    watched = _slot(monitor, screening_visit)
    assert not watched.may_enter and not watched.can_edit
    assert watched.may_review and not watched.can_review  # nothing entered to review yet


def test_an_entered_slot_has_its_record_queries_and_source_verification(
    screening_visit, andrologist, monitor
):
    hormones = save_crf("hormones", screening_visit, andrologist)
    save_crf("semen_analysis", screening_visit, andrologist, sequence=2)
    query = query_open(record=hormones, field_name="lh", question="Units?", user=monitor)
    slot = _slot(monitor, screening_visit)
    assert slot.record == hormones and slot.can_review and not slot.can_edit
    assert slot.queries() == [query]
    assert slot.sdv().status == SdvStatus.PENDING
    assert _slot(andrologist, screening_visit, "semen_analysis", 1).record is None
    assert _slot(andrologist, screening_visit, "semen_analysis", 2).title == "Semen analysis 2"
    assert slot.title == "Hormones"


def test_a_voided_record_leaves_its_slot_empty(screening_visit, andrologist):
    hormones = save_crf("hormones", screening_visit, andrologist)
    crf_void(record=hormones, user=andrologist, reason="Wrong patient")
    assert _slot(andrologist, screening_visit).record is None


def test_a_signed_visit_is_locked(rf, screening_visit, andrologist):
    complete_screening(screening_visit, andrologist)
    request = rf.post("/")
    request.user = andrologist
    signature = signature_sign(
        request=request,
        patient=screening_visit.patient,
        visit=screening_visit,
        username="alice",
        password="correct-horse-battery",
        meaning=Signature.Meaning.INVESTIGATOR_APPROVAL,
        user=andrologist,
        agree=True,
    )
    slot = _slot(andrologist, screening_visit)
    assert slot.lock == signature and slot.entry_open and not slot.can_edit


def test_reread_finds_the_record_entered_meanwhile(screening_visit, andrologist):
    slot = _slot(andrologist, screening_visit)
    hormones = save_crf("hormones", screening_visit, andrologist)
    assert slot.record is None and slot.reread().record == hormones


def _service_accepts(visit, code, user, *, on=None) -> bool:
    """Whether crf_save takes the form; a refusal must be the consent's."""
    try:
        if on is None:
            save_crf(code, visit, user)
        else:
            save_on(code, visit, user, on=on)
    except ValidationError as exc:
        assert "consent" in " ".join(exc.messages).lower()
        return False
    return True


def test_the_page_and_the_save_apply_one_consent_rule(patient, andrologist):
    """No consent, valid, withdrawn: the CRF page opens a form exactly when crf_save takes it;
    the end of study is still recorded after a withdrawal."""
    scr = patient.visits.get(definition__code="SCR")
    slot = _slot(andrologist, scr)
    assert (slot.consent.state, slot.entry_open, slot.can_edit) == ("none", False, False)
    assert _service_accepts(scr, "hormones", andrologist) is False
    give_consent(patient, andrologist)
    assert _slot(andrologist, scr).entry_open is True
    assert _service_accepts(scr, "hormones", andrologist) is True
    _withdraw(patient, andrologist)
    slot = _slot(andrologist, scr, code="examination")
    assert (slot.consent.state, slot.entry_open, slot.can_edit) == ("withdrawn", False, False)
    assert _service_accepts(scr, "examination", andrologist) is False
    eos = end_of_study_visit_open(patient=patient, user=andrologist)
    slot = _slot(andrologist, eos, code="end_of_study")
    assert (slot.consent.state, slot.entry_open, slot.can_edit) == ("withdrawn", True, True)
    assert _service_accepts(eos, "end_of_study", andrologist, on=timezone.localdate()) is True


def test_a_new_consent_version_closes_entry_until_the_patient_re_consents(
    consented_patient, screening_visit, andrologist
):
    from trial.models import ConsentVersion

    protocol = consented_patient.site.protocol
    ConsentVersion.objects.create(
        protocol=protocol, version="9.0", effective_date=timezone.localdate() - timedelta(days=1)
    )
    slot = _slot(andrologist, screening_visit)
    assert (slot.consent.state, slot.entry_open) == ("reconsent_due", False)
