"""The follow-up demo patients cover every stage of procedure day and follow-up."""

from django.core import mail
from django.utils import timezone

from core.roles import Role
from demo.followup import seed_followup_demo
from followup.models import ConcomitantMedication, FollowUpVisit, Reminder
from followup.selectors import (
    VisitStatus,
    end_of_study,
    patient_outcomes,
    procedure_date,
    visits_due_list,
)
from patients.selectors import consent_status

from ..conftest import make_user


def test_the_demo_has_patients_at_every_stage(protocol, site, other_site):
    users = {
        "andrologist": make_user("andrologist", Role.ANDROLOGIST, site),
        "andrologist2": make_user("andrologist2", Role.ANDROLOGIST, other_site),
        "coordinator": make_user(
            "coordinator", Role.COORDINATOR, site, email="coordinator@example.org"
        ),
        "labtech": make_user("labtech", Role.LAB_TECHNICIAN, site),
        "monitor": make_user("monitor", Role.MONITOR, site, other_site),
        "admin": make_user("admin", Role.ADMIN, site, other_site, is_superuser=True),
    }
    patients = seed_followup_demo(protocol=protocol, users=users)
    outcomes = {p.study_id: patient_outcomes(patient=p) for p in patients}
    assert sum(o.responder for o in outcomes.values()) == 2
    assert sum(1 for o in outcomes.values() if o.followup_analyses and not o.responder) == 2
    assert sum(1 for p in patients if procedure_date(patient=p) is None) == 1  # not released
    assert sum(1 for p in patients if end_of_study(patient=p)) == 1
    schedule = visits_due_list(user=users["coordinator"], today=timezone.localdate())
    statuses = {r.status for r in schedule.rows}
    assert {VisitStatus.OVERDUE, VisitStatus.MISSED, VisitStatus.OPEN} <= statuses
    # Medications: a hormone-active one stopped before consent, others still taken; the
    # follow-up visits answer "medications since the last visit" from the log.
    medications = ConcomitantMedication.objects.select_related("patient")
    assert {m.patient.site.code for m in medications} == {"BEN", "AND"}
    prior = medications.get(hormone_class="SERM")
    assert prior.end_date < consent_status(patient=prior.patient).first_signed_on
    assert medications.filter(ongoing=True, hormone_class="NONE").count() >= 2
    answers = FollowUpVisit.objects.filter(visit__patient=prior.patient).values_list(
        "concomitant_medications_taken", flat=True
    )
    assert list(answers) == ["Y"]  # omeprazole, taken at M4
    assert FollowUpVisit.objects.filter(concomitant_medications_taken="N").exists()
    # The first morning's reminders went to the BEN coordinator.
    assert Reminder.objects.filter(status="sent").exists()
    assert {tuple(m.to) for m in mail.outbox} == {("coordinator@example.org",)}
