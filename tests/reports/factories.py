"""Treated patients with the screening items of the results tables and a follow-up, built
through the real services: tests choose the values their story needs."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from ..conftest import enrol, give_consent
from ..factories import save_crf
from ..followup.factories import procedure_day, save, visit


def days_ago(n: int):
    return timezone.localdate() - timedelta(days=n)


def treated(
    site,
    user,
    *,
    age: int = 32,
    histology: str = "SCOS",
    volumes: tuple[str, str] = ("10", "14"),
    karyotype: str = "46,XY",
    azf: str = "NONE",
    cryptorchidism: bool = False,
    varicocele_grade: str = "0",
    baseline: tuple[str, str, str] | None = ("24", "10", "3.0"),
    procedure_days_ago: int = 200,
):
    """A consented, screened patient whose injection was `procedure_days_ago` days ago (the
    follow-up schedule exists); no follow-up entered yet. baseline = (FSH, LH, T) or None."""
    start = procedure_days_ago + 40
    patient = enrol(site, user, age=age, days_ago=start)
    give_consent(patient, user, days_ago=start)
    scr = visit(patient, "SCR")
    screened_on = days_ago(start - 5)
    save_crf(
        "medical_history",
        scr,
        user,
        assessment_date=screened_on,
        cryptorchidism="Y" if cryptorchidism else "N",
        cryptorchidism_side="LEFT" if cryptorchidism else "",
        orchiopexy="Y" if cryptorchidism else "",
    )
    save_crf(
        "examination",
        scr,
        user,
        assessment_date=screened_on,
        left_volume_ml=Decimal(volumes[0]),
        right_volume_ml=Decimal(volumes[1]),
        left_varicocele=varicocele_grade,
    )
    if baseline is not None:
        fsh, lh, testosterone = (Decimal(v) for v in baseline)
        save_crf(
            "hormones",
            scr,
            user,
            assessment_date=screened_on,
            fsh=fsh,
            lh=lh,
            testosterone=testosterone,
        )
    detail = "46,XY/47,XXY" if karyotype == "MOSAIC" else ""
    save_crf("karyotype", scr, user, result=karyotype, detail=detail)
    save_crf("azf", scr, user, result=azf)
    save_crf("biopsy", scr, user, histology=histology)
    procedure_day(patient, user, on=days_ago(procedure_days_ago))
    return patient


def follow_up(
    patient,
    user,
    code: str = "M4",
    *,
    sperm: str = "NONE",
    hormones: tuple[str, str, str] | None = None,
    volumes: tuple[str, str] | None = None,
):
    """Enter visit `code` on its target date: the semen analysis (sperm NONE / PELLET /
    FRESH), and the hormones and the visit form (testicular volumes) when given."""
    v = visit(patient, code)
    on = v.target_date
    save_crf(
        "semen_analysis",
        v,
        user,
        assessment_date=on,
        sperm_seen=sperm,
        concentration=Decimal("0.8") if sperm == "FRESH" else Decimal("0"),
    )
    if hormones is not None:
        fsh, lh, testosterone = (Decimal(x) for x in hormones)
        save_crf("hormones", v, user, assessment_date=on, fsh=fsh, lh=lh, testosterone=testosterone)
    if volumes is not None:
        save(
            "followup_visit",
            v,
            user,
            on=on,
            left_volume_ml=Decimal(volumes[0]),
            right_volume_ml=Decimal(volumes[1]),
        )
    return v
