"""Synthetic screening data for demo patients, entered through the real services so that
the audit trail, stages and flags are what a site would see. Used by `seed_demo` and by the
follow-up and cohort demos; never by the application itself."""

from datetime import date, timedelta
from decimal import Decimal

from core import crf
from patients import services
from patients.models import Patient, Visit


def demo_crf(code: str, visit: Visit, user, sequence: int = 1, **values):
    record = crf.get(code).model(visit=visit, sequence=sequence, **values)
    return services.crf_save(record=record, user=user)


def demo_screening(
    patient: Patient,
    user,
    *,
    on: date,
    complete: bool = True,
    histology: str = "SCOS",
    karyotype: str = "46,XY",
    azf: str = "NONE",
    first_abstinence: int = 3,
    hormones: tuple[str, str, str] = ("24.0", "10.8", "3.1"),
    volumes: tuple[str, str] = ("10", "11"),
    eligible: bool = True,
) -> None:
    """History and examination on `on`; when `complete`, also three semen analyses without
    sperm (a week apart), hormones, karyotype, AZF, biopsy and eligibility."""
    scr = patient.visits.get(definition__code="SCR")
    demo_crf(
        "medical_history",
        scr,
        user,
        assessment_date=on,
        wife_age=28,
        marriage_duration_years=Decimal("5"),
        previous_marriage="N",
        infertility_duration_years=Decimal("4.5"),
        previous_icsi_tese=1,
        mumps_orchitis="N",
        cryptorchidism="N",
        varicocele="N",
        chemo_radiotherapy="N",
        testicular_trauma_torsion="N",
        drug_antihypertensives="N",
        drug_antidepressants="N",
        drug_anabolic_steroids="N",
        smoking="NEVER",
        diabetes="N",
        hypertension="N",
    )
    demo_crf(
        "examination",
        scr,
        user,
        assessment_date=on,
        height_cm=Decimal("175"),
        weight_kg=Decimal("80"),
        volume_method="ORCHIDOMETERY",
        left_volume_ml=Decimal(volumes[0]),
        right_volume_ml=Decimal(volumes[1]),
        left_consistency="SOFT",
        right_consistency="NORMAL",
        left_varicocele="0",
        right_varicocele="0",
        left_vas="PRESENT",
        right_vas="PRESENT",
    )
    if not complete:
        return
    for seq in (1, 2, 3):
        demo_crf(
            "semen_analysis",
            scr,
            user,
            sequence=seq,
            assessment_date=on + timedelta(days=7 * seq),
            abstinence_days=first_abstinence if seq == 1 else 3,
            volume_ml=Decimal("2.5"),
            ph=Decimal("7.6"),
            pellet_examined="Y",
            sperm_seen="NONE",
            concentration=Decimal("0"),
        )
    fsh, lh, testosterone = hormones
    demo_crf(
        "hormones",
        scr,
        user,
        assessment_date=on,
        fsh=Decimal(fsh),
        lh=Decimal(lh),
        testosterone=Decimal(testosterone),
    )
    demo_crf(
        "karyotype",
        scr,
        user,
        assessment_date=on - timedelta(days=200),
        result=karyotype,
        detail="" if karyotype in ("46,XY", "47,XXY", "46,XX") else karyotype,
    )
    demo_crf("azf", scr, user, assessment_date=on - timedelta(days=200), result=azf)
    demo_crf(
        "biopsy",
        scr,
        user,
        assessment_date=on - timedelta(days=400),
        side="BILATERAL",
        histology=histology,
        johnsen_score=Decimal("2") if histology == "SCOS" else None,
    )
    demo_crf(
        "eligibility",
        scr,
        user,
        assessment_date=on + timedelta(days=25),
        incl01="Y",
        incl02="Y",
        incl03="Y",
        incl04="Y",
        incl05="Y",
        excl01="N",
        excl02="N",
        excl03="N" if eligible else "Y",
        excl04="N",
    )
