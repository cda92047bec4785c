"""The synthetic trial cohort (`python manage.py seed_demo --cohort`): one patient per row of
reports.cohort.COHORT_TABLE_1, built through the real services (enrolment, consent, every CRF
through patients.services.crf_save, the follow-up schedule created by the injection), so the
audit trail and the schedule are what a site would have. Synthetic only.

Each patient: screening (history, examination, 3 semen analyses without sperm, hormones,
karyotype, AZF, biopsy, eligibility), procedure day (aspirate, released product, injection),
the five scheduled follow-up visits (M4-M12: visit form, semen analysis, hormones) entered on
their target dates, and an end of study (completed) on the day of M12.
"""

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
from django.utils import timezone

from demo.followup import demo_procedure_day
from demo.patients import demo_crf
from followup import services as followup_services
from patients import services as patient_services
from patients.models import Patient
from reports.cohort import COHORT_DRAWS, COHORT_TABLE_1, cohort_table_errors
from trial.models import Protocol
from trial.selectors import current_consent_version

FOLLOW_UP_CODES = ("M4", "M6", "M8", "M10", "M12")
GROUPS = ("responders", "non_responders")
JOHNSEN = {
    "SCOS": "2",
    "MA_PRIMARY": "4",
    "MA_SECONDARY": "5",
    "MA_SPERMATID": "6",
    "HYPO": "8",
    "SCLEROSIS": "1",
}


@dataclass(frozen=True)
class CohortCase:
    """One synthetic patient: the categories of Table 1 and the drawn values."""

    group: str
    site: str
    enrolled_on: date
    age: int
    testicular_size: str
    examination: str
    biopsy: str
    karyotype: str
    azf: str
    baseline: dict
    after: dict
    # Index in FOLLOW_UP_CODES of the first visit with sperm (None: non-responder).
    first_sperm_visit: int | None

    @property
    def responder(self) -> bool:
        return self.first_sperm_visit is not None


def _expand(counts: dict[str, int]) -> list[str]:
    return [value for value, n in counts.items() for _ in range(n)]


def _ordered(counts: dict[str, int], first: tuple[str, ...]) -> list[str]:
    """Categories in `first` at the start of the list (so that e.g. 47,XXY patients are the
    ones with small testes), the others after."""
    values = _expand(counts)
    return sorted(values, key=lambda v: (v not in first, list(counts).index(v)))


def cohort_cases(*, table: dict = COHORT_TABLE_1, draws: dict = COHORT_DRAWS) -> list[CohortCase]:
    """The patients of `table`, with values drawn from `draws` (fixed seed: the same cohort
    every time)."""
    errors = cohort_table_errors(table)
    if errors:
        raise ValueError("The cohort table is inconsistent: " + " ".join(errors))
    rng = np.random.default_rng(draws["seed"])
    start = date.fromisoformat(draws["first_enrolment"])
    step = draws["enrolment_every_days"]
    sizes = {"responders": table["responders"]}
    sizes["non_responders"] = table["patients"] - table["responders"]
    cases: list[CohortCase] = []
    for group in GROUPS:
        counts = table["groups"][group]
        n = sizes[group]
        # Abnormal karyotypes go with small testes; the other items are shuffled.
        size = _ordered(counts["testicular_size"], ("small",))
        karyotype = _ordered(counts["karyotype"], ("47,XXY", "MOSAIC", "46,XX"))
        shuffled = {
            code: list(rng.permutation(_expand(counts[code])))
            for code in ("examination", "biopsy", "azf")
        }
        for i in range(n):
            baseline, after = {}, {}
            for hormone, (mean, sd) in draws["baseline"].items():
                low, high = draws["bounds"][hormone]
                b = float(np.clip(rng.normal(mean, sd), low, high))
                change_mean, change_sd = draws["change"][group][hormone]
                a = float(np.clip(b * (1 + rng.normal(change_mean, change_sd)), low, high))
                baseline[hormone], after[hormone] = round(b, 2), round(a, 2)
            age_mean, age_sd = draws["age_years"]
            cases.append(
                CohortCase(
                    group=group,
                    site="",
                    enrolled_on=start,
                    age=int(np.clip(round(rng.normal(age_mean, age_sd)), 22, 55)),
                    testicular_size=size[i],
                    examination=str(shuffled["examination"][i]),
                    biopsy=str(shuffled["biopsy"][i]),
                    karyotype=karyotype[i],
                    azf=str(shuffled["azf"][i]),
                    baseline=baseline,
                    after=after,
                    first_sperm_visit=i % len(FOLLOW_UP_CODES) if group == "responders" else None,
                )
            )
    # Enrolment order mixes the groups; the sites alternate.
    order = rng.permutation(len(cases))
    sites = draws["sites"]
    return [
        replace(
            cases[k],
            site=sites[position % len(sites)],
            enrolled_on=start + timedelta(days=step * position),
        )
        for position, k in enumerate(order)
    ]


# ---- writing one patient through the services ------------------------------------------------


# The shared demo builders: one way to write a demo CRF, one procedure day.
_save = demo_crf
_procedure_day = demo_procedure_day


def _dec(value: float, places: str = "0.01") -> Decimal:
    return Decimal(str(value)).quantize(Decimal(places))


def _volumes(case: CohortCase, rng) -> tuple[float, float]:
    if case.testicular_size == "small":
        left = rng.uniform(4, 11.5)
        right = rng.uniform(4, 14)
    else:
        left, right = rng.uniform(12, 20), rng.uniform(12, 20)
    return round(left, 1), round(right, 1)


def _screen(case: CohortCase, patient: Patient, user, rng, volumes) -> None:
    scr = patient.visits.get(definition__code="SCR")
    on = case.enrolled_on
    crypt = case.examination == "cryptorchidism"
    varicocele = case.examination == "varicocele"
    _save(
        "medical_history",
        scr,
        user,
        assessment_date=on,
        wife_age=int(rng.integers(22, 38)),
        marriage_duration_years=_dec(rng.uniform(2, 12), "0.1"),
        previous_marriage="N",
        infertility_duration_years=_dec(rng.uniform(2, 10), "0.1"),
        previous_icsi_tese=int(rng.integers(0, 3)),
        mumps_orchitis="N",
        cryptorchidism="Y" if crypt else "N",
        cryptorchidism_side=str(rng.choice(["LEFT", "RIGHT", "BILATERAL"])) if crypt else "",
        orchiopexy="Y" if crypt else "",
        varicocele="Y" if varicocele else "N",
        varicocele_treated="N" if varicocele else "",
        chemo_radiotherapy="N",
        testicular_trauma_torsion="N",
        drug_antihypertensives="N",
        drug_antidepressants="N",
        drug_anabolic_steroids="N",
        smoking=str(rng.choice(["NEVER", "CURRENT", "FORMER"], p=[0.6, 0.3, 0.1])),
        diabetes="N",
        hypertension="N",
    )
    _save(
        "examination",
        scr,
        user,
        assessment_date=on,
        height_cm=_dec(rng.normal(174, 6), "0.1"),
        weight_kg=_dec(rng.normal(82, 10), "0.1"),
        klinefelter_habitus="Y" if case.karyotype == "47,XXY" else "N",
        volume_method="ORCHIDOMETERY",
        left_volume_ml=_dec(volumes[0], "0.1"),
        right_volume_ml=_dec(volumes[1], "0.1"),
        left_consistency="SOFT" if case.testicular_size == "small" else "NORMAL",
        right_consistency="SOFT" if case.testicular_size == "small" else "NORMAL",
        left_varicocele=str(rng.integers(1, 4)) if varicocele else "0",
        right_varicocele="0",
        left_vas="PRESENT",
        right_vas="PRESENT",
    )
    for seq in (1, 2, 3):
        _save(
            "semen_analysis",
            scr,
            user,
            sequence=seq,
            assessment_date=on + timedelta(days=7 * seq),
            abstinence_days=int(rng.integers(2, 6)),
            volume_ml=_dec(rng.uniform(1.5, 4), "0.1"),
            ph=Decimal("7.6"),
            pellet_examined="Y",
            sperm_seen="NONE",
            concentration=Decimal("0"),
        )
    _save(
        "hormones",
        scr,
        user,
        assessment_date=on + timedelta(days=2),
        fsh=_dec(case.baseline["fsh"]),
        lh=_dec(case.baseline["lh"]),
        testosterone=_dec(case.baseline["testosterone"]),
    )
    _save(
        "karyotype",
        scr,
        user,
        assessment_date=on - timedelta(days=120),
        result=case.karyotype,
        detail="46,XY/47,XXY" if case.karyotype == "MOSAIC" else "",
    )
    _save(
        "azf",
        scr,
        user,
        assessment_date=on - timedelta(days=120),
        result=case.azf,
        markers_tested="sY84, sY86, sY127, sY134, sY254, sY255",
    )
    _save(
        "biopsy",
        scr,
        user,
        assessment_date=on - timedelta(days=365),
        side="BILATERAL",
        histology=case.biopsy,
        johnsen_score=Decimal(JOHNSEN[case.biopsy]),
    )
    _save(
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
        excl03="N",
        excl04="N",
    )


def _semen_finding(case: CohortCase, index: int, rng) -> dict:
    if case.first_sperm_visit is None or index < case.first_sperm_visit:
        return {"sperm_seen": "NONE", "concentration": Decimal("0")}
    if index == case.first_sperm_visit or rng.random() < 0.4:
        return {"sperm_seen": "PELLET", "concentration": Decimal("0")}
    return {"sperm_seen": "FRESH", "concentration": _dec(rng.uniform(0.1, 2.0))}


def _follow_up(case: CohortCase, patient: Patient, user, rng, volumes) -> date:
    """The five scheduled visits on their target dates; returns the last visit's date.
    Hormones move from the baseline to the drawn after-therapy value (at M12)."""
    visits = {v.definition.code: v for v in patient.visits.select_related("definition")}
    last = len(FOLLOW_UP_CODES) - 1
    for index, code in enumerate(FOLLOW_UP_CODES):
        visit = visits[code]
        on = visit.target_date
        _save(
            "followup_visit",
            visit,
            user,
            assessment_date=on,
            volume_method="ORCHIDOMETERY",
            left_volume_ml=_dec(max(1.0, volumes[0] + rng.normal(0, 0.5)), "0.1"),
            right_volume_ml=_dec(max(1.0, volumes[1] + rng.normal(0, 0.5)), "0.1"),
            sexual_function="UNCHANGED",
            libido=str(rng.choice(["IMPROVED", "UNCHANGED"])),
            concomitant_medications_taken="N",
            adverse_events_since_last_visit="N",
        )
        _save(
            "semen_analysis",
            visit,
            user,
            assessment_date=on,
            abstinence_days=int(rng.integers(2, 6)),
            volume_ml=_dec(rng.uniform(1.5, 4), "0.1"),
            ph=Decimal("7.6"),
            pellet_examined="Y",
            **_semen_finding(case, index, rng),
        )
        values = {}
        for hormone in ("fsh", "lh", "testosterone"):
            b, a = case.baseline[hormone], case.after[hormone]
            if index == last:
                value = a
            else:
                value = (b + (a - b) * (index + 1) / (last + 1)) * (1 + rng.normal(0, 0.04))
            values[hormone] = _dec(max(value, 0.1))
        _save("hormones", visit, user, assessment_date=on, **values)
    return visits[FOLLOW_UP_CODES[-1]].target_date


def seed_cohort(
    *,
    protocol: Protocol,
    users: dict,
    table: dict = COHORT_TABLE_1,
    draws: dict = COHORT_DRAWS,
) -> list[Patient]:
    """Create the cohort's patients (all of them treated, followed for a year and completed)
    through the services; returns them. `users`: the demo users by username
    (andrologist, andrologist2, labtech)."""
    version = current_consent_version(protocol=protocol)
    sites = {s.code: s for s in protocol.sites.all()}
    doctors = {"BEN": users["andrologist"], "AND": users["andrologist2"]}
    # The BEN lab technician prepares BEN's products; AND's andrologist records AND's.
    preparers = {"BEN": users["labtech"], "AND": users["andrologist2"]}
    rng = np.random.default_rng(draws["seed"] + 1)
    created = []
    for number, case in enumerate(cohort_cases(table=table, draws=draws), start=1):
        doctor = doctors[case.site]
        patient = patient_services.patient_enrol(
            site=sites[case.site],
            user=doctor,
            full_name=f"Cohort Patient {number:03d}",
            date_of_birth=case.enrolled_on - timedelta(days=365 * case.age + 100),
            enrolment_date=case.enrolled_on,
        )
        patient_services.consent_record(
            patient=patient,
            consent_version=version,
            user=doctor,
            obtained_by=doctor,
            signed_at=timezone.make_aware(datetime.combine(case.enrolled_on, time(9, 0))),
            witness_name="Study nurse",
            patient_copy_given=True,
        )
        volumes = _volumes(case, rng)
        _screen(case, patient, doctor, rng, volumes)
        _procedure_day(
            patient, doctor, preparers[case.site], on=case.enrolled_on + timedelta(days=45)
        )
        last_visit = _follow_up(case, patient, doctor, rng, volumes)
        eos = followup_services.end_of_study_visit_open(patient=patient, user=doctor)
        _save("end_of_study", eos, doctor, assessment_date=last_visit, status="COMPLETED")
        created.append(patient)
    return created
