"""Valid values of the procedure-day and follow-up forms, and patients at each stage built
through the real services: tests change one value to tell their story."""

from datetime import date, time, timedelta
from decimal import Decimal

from django.utils import timezone

from core import crf
from patients.services import crf_save

from ..conftest import enrol, give_consent

PROCEDURE = {
    "bm_aspirate": {
        "aspiration_time": time(8, 30),
        "aspiration_site": "POSTERIOR",
        "side": "BILATERAL",
        "volume_ml": Decimal("60"),
        "anaesthesia": "LOCAL",
        "operator": "Dr Aspirate",
        "complications": "N",
    },
    "msc_preparation": {
        "ficoll_medium": "Ficoll-Paque PLUS",
        "ficoll_lot": "FP-2291",
        "buffy_coat_collected": "Y",
        "cd105_beads": "CD105 MicroBeads",
        "cd105_lot": "CD105-118",
        "final_volume_ml": Decimal("1.00"),
        "cell_count_million": Decimal("4.40"),
        "viability_pct": Decimal("98.8"),
        "preparation_end_time": time(12, 15),
        "prepared_by": "K. Fathy",
        "released_by": "Dr Release",
        "release_decision": "RELEASED",
    },
    "injection": {
        "injection_time": time(13, 5),
        "testes_injected": "BILATERAL",
        "left_volume_ml": Decimal("0.50"),
        "left_cells_million": Decimal("2.20"),
        "right_volume_ml": Decimal("0.50"),
        "right_cells_million": Decimal("2.20"),
        "local_anaesthesia": "Y",
        "operator": "Dr Inject",
        "immediate_complications": "N",
    },
    "followup_visit": {
        "volume_method": "ORCHIDOMETERY",
        "left_volume_ml": Decimal("10"),
        "right_volume_ml": Decimal("12"),
        "sexual_function": "UNCHANGED",
        "libido": "IMPROVED",
        "concomitant_medications_taken": "N",
        "adverse_events_since_last_visit": "N",
    },
    "end_of_study": {"status": "COMPLETED"},
}

AE = {
    "term": "Scrotal pain",
    "location": "left testis",
    "onset_date": None,  # set by ae_values
    "end_date": None,
    "ongoing": True,
    "ctcae_grade": 1,
    "serious": "N",
    "relation_aspiration": "NOT RELATED",
    "relation_injection": "PROBABLY RELATED",
    "relation_product": "POSSIBLY RELATED",
    "action_taken": "NOT APPLICABLE",
    "treatment_given": "Y",
    "outcome": "RECOVERING/RESOLVING",
}


CM = {
    "medication": "Clomiphene citrate",
    "indication": "Male infertility",
    "hormone_class": "SERM",
    "dose": Decimal("50"),
    "dose_unit": "mg",
    "route": "ORAL",
    "route_other": "",
    "frequency": "QD",
    "frequency_other": "",
    "start_date": None,  # set by cm_values
    "end_date": None,
    "ongoing": True,
}


def values(code: str, *, on: date, **changes) -> dict:
    data = {"assessment_date": on, **PROCEDURE[code]}
    data.update(changes)
    return data


def as_post(data: dict) -> dict:
    """Values as a browser posts them."""
    posted = {}
    for key, value in data.items():
        if value is None or value is False:
            continue  # an empty input / an unticked checkbox is not sent
        if value is True:
            posted[key] = "on"
        elif isinstance(value, time):
            posted[key] = value.strftime("%H:%M")
        elif hasattr(value, "isoformat"):
            posted[key] = value.isoformat()
        else:
            posted[key] = str(value)
    return posted


def save(code: str, visit, user, *, on: date, sequence: int = 1, **changes):
    record = crf.get(code).model(visit=visit, sequence=sequence, **values(code, on=on, **changes))
    return crf_save(record=record, user=user)


def procedure_visit(patient):
    return patient.visits.get(definition__code="D0")


def procedure_day(patient, user, *, on: date, **injection_changes):
    """Aspirate, released product, injection: the follow-up schedule is created."""
    d0 = procedure_visit(patient)
    save("bm_aspirate", d0, user, on=on)
    save("msc_preparation", d0, user, on=on)
    return save("injection", d0, user, on=on, **injection_changes)


def ae_values(*, onset: date, **changes) -> dict:
    data = dict(AE, onset_date=onset)
    data.update(changes)
    return data


def cm_values(*, start: date, **changes) -> dict:
    data = dict(CM, start_date=start)
    data.update(changes)
    return data


def treated_patient(site, user, *, procedure_days_ago: int, consent_days_ago: int | None = None):
    """A consented patient whose procedure was `procedure_days_ago` days ago."""
    consent_days_ago = consent_days_ago or procedure_days_ago + 30
    patient = enrol(site, user, days_ago=consent_days_ago)
    give_consent(patient, user, days_ago=consent_days_ago)
    procedure_day(patient, user, on=timezone.localdate() - timedelta(days=procedure_days_ago))
    return patient


def visit(patient, code: str):
    return patient.visits.select_related("definition", "patient").get(definition__code=code)
