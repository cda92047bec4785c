"""The synthetic cohort `seed_demo --cohort` builds: the counts of the trial's Table 1 and the
distributions its hormone values are drawn from. Synthetic data only: no real patient.

READ THIS BEFORE USING THE COHORT AS "THE PAPER":
- Confirmed (../shared/CRF-SPEC.md, "Derived outcomes"): 87 patients, 18 responders (20.7%).
- PLACEHOLDERS: every per-group count below (testicular size, examination, biopsy class,
  karyotype, AZF) and every mean/SD of the draws. The published Table 1 is not in the
  repository; these numbers were chosen to be plausible for non-obstructive azoospermia (most
  SCOS, mostly small testes, mostly 46,XY with a few 47,XXY and AZFc deletions). Replace them
  with the paper's Table 1 values: the seed, the results page and the acceptance test
  (tests/reports/test_cohort.py) all read this table, so nothing else needs to change.

Keys are the codes the results tables use (reports.selectors.CHARACTERISTICS: the
characteristic codes and the stored values of their categories).
"""

COHORT_TABLE_1 = {
    "patients": 87,  # confirmed
    "responders": 18,  # confirmed: 18/87 = 20.7%
    "groups": {
        # PLACEHOLDER counts: replace with the paper's Table 1.
        "responders": {
            "testicular_size": {"normal": 7, "small": 11},
            "examination": {"normal": 12, "varicocele": 4, "cryptorchidism": 2},
            "biopsy": {
                "SCOS": 8,
                "MA_PRIMARY": 3,
                "MA_SECONDARY": 1,
                "MA_SPERMATID": 2,
                "HYPO": 3,
                "SCLEROSIS": 1,
            },
            "karyotype": {"46,XY": 17, "47,XXY": 1},
            "azf": {"NONE": 17, "AZFc": 1},
        },
        # PLACEHOLDER counts: replace with the paper's Table 1.
        "non_responders": {
            "testicular_size": {"normal": 19, "small": 50},
            "examination": {"normal": 45, "varicocele": 14, "cryptorchidism": 10},
            "biopsy": {
                "SCOS": 46,
                "MA_PRIMARY": 8,
                "MA_SECONDARY": 3,
                "MA_SPERMATID": 2,
                "HYPO": 4,
                "SCLEROSIS": 6,
            },
            "karyotype": {"46,XY": 63, "47,XXY": 5, "MOSAIC": 1},
            "azf": {"NONE": 63, "AZFc": 5, "AZFb+c": 1},
        },
    },
}

# PLACEHOLDER distributions (mean, SD), drawn with a fixed seed: near published NOA values.
COHORT_DRAWS = {
    "seed": 20200201,
    # Patients enrolled one every 5 days from this date (the trial ran 2020-2022).
    "first_enrolment": "2020-02-01",
    "enrolment_every_days": 5,
    # Patients alternate between the two sites.
    "sites": ("BEN", "AND"),
    "age_years": (33.0, 6.0),
    "baseline": {"fsh": (25.0, 10.0), "lh": (11.0, 5.0), "testosterone": (3.5, 1.5)},
    # Relative change at the last follow-up (mean, SD): FSH and LH fall, testosterone rises,
    # more in responders.
    "change": {
        "responders": {"fsh": (-0.30, 0.10), "lh": (-0.20, 0.10), "testosterone": (0.25, 0.10)},
        "non_responders": {
            "fsh": (-0.05, 0.08),
            "lh": (-0.03, 0.08),
            "testosterone": (0.05, 0.08),
        },
    },
    # Hard bounds of the draws (kept inside the CRF's plausible ranges).
    "bounds": {"fsh": (1.5, 80.0), "lh": (1.0, 40.0), "testosterone": (0.5, 12.0)},
}


def cohort_table_errors(table: dict) -> list[str]:
    """What is inconsistent in a cohort table: every characteristic's counts must add up to
    its group's size, and the groups to the number of patients."""
    errors = []
    sizes = {
        "responders": table["responders"],
        "non_responders": table["patients"] - table["responders"],
    }
    for group, characteristics in table["groups"].items():
        for code, counts in characteristics.items():
            if sum(counts.values()) != sizes[group]:
                errors.append(
                    f"{group} {code}: counts add up to {sum(counts.values())}, not {sizes[group]}."
                )
    return errors
