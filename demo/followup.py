"""Demo patients for procedure day and follow-up, built through the real services (so the
audit trail, the schedule and the reminders are what a real site would see). Synthetic only.

Called by the `seed_demo` command after its screening patients (one withdrawn among them)."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from demo.patients import demo_crf, demo_screening
from followup import services
from followup.models import FollowUpVisit
from followup.selectors import followup_period_start, medications_in_use
from patients import services as patient_services
from patients.models import Patient
from trial.models import Protocol
from trial.selectors import current_consent_version

NO_SPERM = {"sperm_seen": "NONE", "concentration": Decimal("0")}
PELLET = {"sperm_seen": "PELLET", "concentration": Decimal("0")}


def _fresh(concentration: str) -> dict:
    return {"sperm_seen": "FRESH", "concentration": Decimal(concentration)}


@dataclass(frozen=True)
class DemoMedication:
    medication: str
    indication: str
    hormone_class: str
    dose: str
    dose_unit: str
    route: str
    frequency: str
    # Days from the procedure (negative: before it); no end: ongoing.
    start_day: int
    end_day: int | None = None


@dataclass(frozen=True)
class DemoCase:
    site: str
    name: str
    age: int
    procedure_days_ago: int | None
    histology: str = "SCOS"
    # Follow-up visits entered: visit code -> semen finding and hormones (FSH, LH, T).
    visits: tuple = ()
    end: str = ""
    released: bool = True
    medications: tuple[DemoMedication, ...] = ()


# Clomiphene tried before the referral and stopped well before screening (a prior,
# hormone-active medication), and a medication still taken.
CLOMIPHENE = DemoMedication(
    "Clomiphene citrate", "Male infertility", "SERM", "50", "mg", "ORAL", "QD", -400, -150
)
OMEPRAZOLE = DemoMedication("Omeprazole", "Gastritis", "NONE", "20", "mg", "ORAL", "QD", -30)
PARACETAMOL = DemoMedication(
    "Paracetamol", "Scrotal pain after the injection", "NONE", "500", "mg", "ORAL", "PRN", 0, 4
)
VITAMIN_E = DemoMedication(
    "Vitamin E", "Antioxidant supplement", "NONE", "400", "IU", "ORAL", "QD", -90
)


CASES = (
    # Product not released: no injection, no follow-up schedule.
    DemoCase("BEN", "Sherif Demo Eight", 30, None, released=False),
    # Procedure done ten days ago: M4 upcoming.
    DemoCase("BEN", "Adel Demo Nine", 35, 10),
    # Mid follow-up, M4 done, M6 overdue (window closed 6 days ago).
    DemoCase(
        "BEN",
        "Fady Demo Ten",
        32,
        200,
        visits=(("M4", NO_SPERM, ("23.0", "10.5", "3.3")),),
        medications=(CLOMIPHENE, OMEPRAZOLE),
    ),
    # M4 missed, M6 open now.
    DemoCase("BEN", "Ramy Demo Eleven", 36, 175, histology="MA_PRIMARY"),
    # Responder: sperm in the pellet at M6, then in the fresh sample at M8.
    DemoCase(
        "BEN",
        "Khaled Demo Twelve",
        29,
        250,
        histology="MA_SPERMATID",
        visits=(
            ("M4", NO_SPERM, ("21.0", "9.9", "3.4")),
            ("M6", PELLET, ("17.5", "8.1", "3.9")),
            ("M8", _fresh("0.4"), ("15.0", "7.2", "4.4")),
        ),
        medications=(PARACETAMOL,),
    ),
    # Non-responder who completed the study (M4-M12 without sperm).
    DemoCase(
        "BEN",
        "Nabil Demo Thirteen",
        39,
        385,
        visits=tuple(
            (code, NO_SPERM, ("25.0", "11.0", "3.0")) for code in ("M4", "M6", "M8", "M10", "M12")
        ),
        end="COMPLETED",
    ),
    # Responder at the other site.
    DemoCase(
        "AND",
        "Samir Demo Fourteen",
        31,
        190,
        histology="HYPO",
        visits=(("M4", _fresh("1.2"), ("12.0", "6.0", "4.8")),),
        medications=(VITAMIN_E,),
    ),
)


_crf = demo_crf


def _screen(patient: Patient, user, *, on: date, histology: str) -> None:
    demo_screening(patient, user, on=on, histology=histology, hormones=("24.0", "10.8", "3.1"))


def demo_procedure_day(
    patient: Patient, doctor, labtech, *, on: date, released: bool = True
) -> None:
    d0 = patient.visits.get(definition__code="D0")
    _crf(
        "bm_aspirate",
        d0,
        doctor,
        assessment_date=on,
        aspiration_time=time(8, 15),
        aspiration_site="POSTERIOR",
        side="BILATERAL",
        volume_ml=Decimal("60"),
        anaesthesia="LOCAL",
        operator=doctor.get_full_name(),
        complications="N",
    )
    _crf(
        "msc_preparation",
        d0,
        labtech,
        assessment_date=on,
        ficoll_medium="Ficoll-Paque PLUS",
        ficoll_lot="FP-2291",
        buffy_coat_collected="Y",
        cd105_beads="CD105 MicroBeads",
        cd105_lot="CD105-118",
        final_volume_ml=Decimal("1.00"),
        cell_count_million=Decimal("4.60") if released else Decimal("2.10"),
        viability_pct=Decimal("98.9") if released else Decimal("89.0"),
        preparation_end_time=time(12, 40),
        prepared_by=labtech.get_full_name(),
        released_by=doctor.get_full_name(),
        release_decision="RELEASED" if released else "NOT_RELEASED",
        release_reason="" if released else "Viability 89% and 2.1 x 10^6 cells: below release.",
    )
    if not released:
        return
    _crf(
        "injection",
        d0,
        doctor,
        assessment_date=on,
        injection_time=time(13, 30),
        testes_injected="BILATERAL",
        left_volume_ml=Decimal("0.50"),
        left_cells_million=Decimal("2.30"),
        right_volume_ml=Decimal("0.50"),
        right_cells_million=Decimal("2.30"),
        local_anaesthesia="Y",
        operator=doctor.get_full_name(),
        immediate_complications="N",
    )


def demo_post_procedure_pain(patient: Patient, doctor, *, procedure_on: date):
    """The expected adverse event after the injection: scrotal pain for three days, grade 1."""
    services.adverse_event_create(
        patient=patient,
        data={
            "term": "Scrotal pain",
            "location": "both testes",
            "onset_date": procedure_on,
            "end_date": procedure_on + timedelta(days=3),
            "ongoing": False,
            "ctcae_grade": 1,
            "serious": "N",
            "relation_aspiration": "NOT RELATED",
            "relation_injection": "PROBABLY RELATED",
            "relation_product": "UNLIKELY RELATED",
            "action_taken": "NOT APPLICABLE",
            "treatment_given": "Y",
            "outcome": "RECOVERED/RESOLVED",
        },
        user=doctor,
    )


def demo_medication(patient: Patient, doctor, *, medication: DemoMedication, procedure_on: date):
    end = None if medication.end_day is None else procedure_on + timedelta(medication.end_day)
    return services.concomitant_medication_create(
        patient=patient,
        data={
            "medication": medication.medication,
            "indication": medication.indication,
            "hormone_class": medication.hormone_class,
            "dose": Decimal(medication.dose),
            "dose_unit": medication.dose_unit,
            "route": medication.route,
            "frequency": medication.frequency,
            "start_date": procedure_on + timedelta(medication.start_day),
            "end_date": end,
            "ongoing": end is None,
        },
        user=doctor,
    )


def demo_follow_up(patient: Patient, doctor, *, code: str, semen: dict, hormones: tuple) -> None:
    visit = patient.visits.get(definition__code=code)
    on = visit.target_date
    # Answered from the medication log, as the site would (the visit form checks it).
    since = followup_period_start(record=FollowUpVisit(visit=visit, assessment_date=on))
    taken = medications_in_use(patient=patient, start=since, end=on)
    _crf(
        "followup_visit",
        visit,
        doctor,
        assessment_date=on,
        volume_method="ORCHIDOMETERY",
        left_volume_ml=Decimal("10"),
        right_volume_ml=Decimal("11"),
        sexual_function="UNCHANGED",
        libido="UNCHANGED",
        concomitant_medications_taken="Y" if taken else "N",
        adverse_events_since_last_visit="N",
    )
    _crf(
        "semen_analysis",
        visit,
        doctor,
        assessment_date=on,
        abstinence_days=4,
        volume_ml=Decimal("2.6"),
        ph=Decimal("7.6"),
        pellet_examined="Y",
        **semen,
    )
    fsh, lh, testosterone = (Decimal(v) for v in hormones)
    _crf("hormones", visit, doctor, assessment_date=on, fsh=fsh, lh=lh, testosterone=testosterone)


def seed_followup_demo(*, protocol: Protocol, users: dict) -> list[Patient]:
    """Add the demo patients of procedure day and follow-up; returns them."""
    today = timezone.localdate()
    version = current_consent_version(protocol=protocol)
    doctors = {"BEN": users["andrologist"], "AND": users["andrologist2"]}
    labtech = users["labtech"]
    created = []
    for case in CASES:
        doctor = doctors[case.site]
        start = (case.procedure_days_ago or 20) + 60
        patient = patient_services.patient_enrol(
            site=protocol.sites.get(code=case.site),
            user=doctor,
            full_name=case.name,
            phone="+20 100 000 0000",
            date_of_birth=today - timedelta(days=365 * case.age + 50),
            enrolment_date=today - timedelta(days=start),
        )
        signed = datetime.combine(today - timedelta(days=start), time(10, 0))
        patient_services.consent_record(
            patient=patient,
            consent_version=version,
            user=doctor,
            obtained_by=doctor,
            signed_at=timezone.make_aware(signed),
            witness_name="Nurse on duty",
            patient_copy_given=True,
        )
        _screen(patient, doctor, on=today - timedelta(days=start - 2), histology=case.histology)
        procedure_on = today - timedelta(days=case.procedure_days_ago or 3)
        demo_procedure_day(patient, doctor, labtech, on=procedure_on, released=case.released)
        for medication in case.medications:
            demo_medication(patient, doctor, medication=medication, procedure_on=procedure_on)
        for code, semen, hormones in case.visits:
            demo_follow_up(patient, doctor, code=code, semen=semen, hormones=hormones)
        if case.procedure_days_ago and case.procedure_days_ago <= 30:
            demo_post_procedure_pain(patient, doctor, procedure_on=procedure_on)
        if case.end:
            eos = services.end_of_study_visit_open(patient=patient, user=doctor)
            _crf("end_of_study", eos, doctor, assessment_date=today, status=case.end)
        created.append(patient)
    # The morning job, as beat would run it (the demo prints the e-mails on the console).
    services.reminders_dispatch(today=today)
    return created
