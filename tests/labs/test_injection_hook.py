"""The injection date is the procedure date: labs registers the injection form without knowing
the follow-up schedule; followup attaches the schedule to it (core.crf.on_saved, in its
ready()), so saving the injection creates the follow-up visits."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from core import crf
from followup.services import procedure_recorded
from labs.models import Injection
from patients.services import crf_save

from ..factories import save_crf
from ..followup.factories import procedure_day


def test_followup_attaches_the_schedule_to_the_injection_labs_registers():
    assert crf.get("injection").model is Injection
    assert procedure_recorded in crf._on_saved["injection"]


def test_saving_the_injection_creates_the_follow_up_visits(consented_patient, andrologist):
    on = timezone.localdate() - timedelta(days=3)
    assert not consented_patient.visits.filter(definition__code="M4").exists()
    procedure_day(consented_patient, andrologist, on=on)
    m4 = consented_patient.visits.get(definition__code="M4")
    assert m4.target_date == on + timedelta(days=120)


def test_an_on_saved_hook_runs_after_each_save_of_its_own_form_only(
    monkeypatch, screening_visit, andrologist
):
    calls = []
    monkeypatch.setattr(crf, "_on_saved", {})

    def hook(*, record, user, created):
        calls.append((record.crf_code, record.pk, user, created))

    crf.on_saved("hormones", hook)
    crf.on_saved("hormones", hook)  # registered once
    hormones = save_crf("hormones", screening_visit, andrologist)
    save_crf("examination", screening_visit, andrologist)
    hormones.fsh = Decimal("24.1")
    crf_save(record=hormones, user=andrologist, reason="Transcription error")
    assert calls == [
        ("hormones", hormones.pk, andrologist, True),
        ("hormones", hormones.pk, andrologist, False),
    ]
