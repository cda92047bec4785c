"""The stored stage and flags (PatientStatus) agree with the records: `manage.py
patient_status` and the restore check (`manage.py verify_restore`, registered with
audit.integrity.register_check in PatientsConfig.ready())."""

from audit.integrity import SHOWN, Check

from .selectors import Stage, status_drift


def describe_drift(row) -> str:
    pk, _, stored, (stage, flags) = row
    now = f"{Stage.LABELS.get(stage, stage)}{', flagged' if flags else ''}"
    if stored is None:
        return f"patient #{pk}: no stored status (the records say {now})"
    was = f"{Stage.LABELS.get(stored[0], stored[0])}{', flagged' if stored[1] else ''}"
    return f"patient #{pk}: stored {was}, the records say {now}"


def status_check() -> Check:
    """Every patient's stored stage and flags recomputed from the records with the pages'
    rules (patients.selectors.status_drift). A difference means a write reached the records
    without the services (raw SQL, a restore of part of the data): `manage.py patient_status
    --repair` rewrites those rows."""
    check = Check("patient stage and flags")
    drift = status_drift()
    check.problems = [describe_drift(row) for row in drift[:SHOWN]]
    if len(drift) > SHOWN:
        check.problems.append(f"... and {len(drift) - SHOWN} more")
    check.summary = (
        "every patient's stored stage and flags match the records"
        if not drift
        else f"{len(drift)} patient(s) whose stored stage or flags differ from the records"
    )
    return check
