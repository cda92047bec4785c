"""Valid CRF values, one dict per form: tests change one value to tell their story."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone


def today_minus(days):
    return timezone.localdate() - timedelta(days=days)


class DaysAgo(int):
    """A date written as days before "today", resolved when a test asks for the values:
    computed at import time it would be the real date, not the test's pinned clock."""


def _resolved(value):
    return today_minus(value) if isinstance(value, DaysAgo) else value


VALID = {
    "eligibility": {
        "assessment_date": DaysAgo(1),
        "incl01": "Y",
        "incl02": "Y",
        "incl03": "Y",
        "incl04": "Y",
        "incl05": "Y",
        "excl01": "N",
        "excl02": "N",
        "excl03": "N",
        "excl04": "N",
    },
    "medical_history": {
        "assessment_date": DaysAgo(20),
        "wife_age": 28,
        "marriage_duration_years": Decimal("4"),
        "previous_marriage": "N",
        "infertility_duration_years": Decimal("3"),
        "previous_icsi_tese": 0,
        "mumps_orchitis": "N",
        "cryptorchidism": "N",
        "varicocele": "N",
        "chemo_radiotherapy": "N",
        "testicular_trauma_torsion": "N",
        "drug_antihypertensives": "N",
        "drug_antidepressants": "N",
        "drug_anabolic_steroids": "N",
        "smoking": "NEVER",
        "diabetes": "N",
        "hypertension": "N",
    },
    "examination": {
        "assessment_date": DaysAgo(20),
        "height_cm": Decimal("176"),
        "weight_kg": Decimal("80"),
        "volume_method": "ORCHIDOMETERY",
        "left_volume_ml": Decimal("10"),
        "right_volume_ml": Decimal("14"),
        "left_consistency": "SOFT",
        "right_consistency": "NORMAL",
        "left_varicocele": "0",
        "right_varicocele": "0",
        "left_vas": "PRESENT",
        "right_vas": "PRESENT",
        "gigantism": "N",
        "dwarfism": "N",
        "myxedema": "N",
        "klinefelter_habitus": "N",
        "gynecomastia": "N",
        "down_features": "N",
        "cord_anomaly": "N",
        "scrotal_swelling": "N",
        "congenital_malformation": "N",
    },
    "semen_analysis": {
        "assessment_date": DaysAgo(15),
        "abstinence_days": 3,
        "volume_ml": Decimal("2.5"),
        "ph": Decimal("7.6"),
        "pellet_examined": "Y",
        "sperm_seen": "NONE",
        "concentration": Decimal("0"),
    },
    "hormones": {
        "assessment_date": DaysAgo(15),
        "fsh": Decimal("22.5"),
        "lh": Decimal("9.8"),
        "testosterone": Decimal("3.2"),
    },
    "karyotype": {"assessment_date": DaysAgo(300), "result": "46,XY"},
    "azf": {"assessment_date": DaysAgo(300), "result": "NONE"},
    "biopsy": {
        "assessment_date": DaysAgo(500),
        "side": "BILATERAL",
        "histology": "SCOS",
        "johnsen_score": Decimal("2"),
    },
}


def crf_values(code, **changes):
    values = {name: _resolved(value) for name, value in VALID[code].items()}
    values.update(changes)
    return values


# Form-only inputs (not model fields) that a browser posts with their default.
FORM_EXTRAS = {"hormones": {"testosterone_unit": "ng/mL"}}


def post_data(code, **changes):
    """The same values as a browser would post them."""
    data = dict(FORM_EXTRAS.get(code, {}))
    for key, value in crf_values(code, **changes).items():
        if value is None:
            data[key] = ""
        elif hasattr(value, "isoformat"):
            data[key] = value.isoformat()
        else:
            data[key] = str(value)
    return data


def save_crf(code, visit, user, sequence=1, **changes):
    from core import crf
    from patients.services import crf_save

    record = crf.get(code).model(visit=visit, sequence=sequence, **crf_values(code, **changes))
    return crf_save(record=record, user=user)


SCREENING_ONCE = (
    "eligibility",
    "medical_history",
    "examination",
    "hormones",
    "karyotype",
    "azf",
    "biopsy",
)


def complete_screening(visit, user, **semen_changes):
    """Every screening form with valid values; the 3 semen analyses take `semen_changes`."""
    for code in SCREENING_ONCE:
        save_crf(code, visit, user)
    for seq in (1, 2, 3):
        save_crf("semen_analysis", visit, user, sequence=seq, **semen_changes)
