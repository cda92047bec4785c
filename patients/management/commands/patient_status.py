"""Check the stored stage and flags (patients.models.PatientStatus) against the records.

    python manage.py patient_status            # report drift; exit non-zero when any
    python manage.py patient_status --repair   # and rewrite the rows that drifted
    python manage.py patient_status --rebuild  # every row again, in one INSERT ... SELECT

The services keep the rows current in the transaction of each write; drift comes from writes
that bypassed them (raw SQL, a partial restore)."""

from django.core.management.base import BaseCommand, CommandError

from patients.integrity import describe_drift
from patients.selectors import status_drift
from patients.services import patient_status_rebuild, patient_status_repair


class Command(BaseCommand):
    requires_system_checks = []

    help = "Compare each patient's stored stage and flags with the records; repair on request."

    def add_arguments(self, parser):
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--repair", action="store_true", help="rewrite the rows that drifted")
        what.add_argument(
            "--rebuild", action="store_true", help="recompute every patient's row (set-based)"
        )

    def handle(self, *args, repair, rebuild, **options):
        if rebuild:
            rows = patient_status_rebuild()
            self.stdout.write(f"Rebuilt the stored stage and flags of {rows} patient(s).")
            return
        drift = patient_status_repair() if repair else status_drift()
        for row in drift:
            self.stdout.write(("REPAIRED  " if repair else "DRIFT  ") + describe_drift(row))
        if not drift:
            self.stdout.write("Every patient's stored stage and flags match the records.")
        elif repair:
            self.stdout.write(f"Repaired {len(drift)} patient(s).")
        else:
            raise CommandError(
                f"{len(drift)} patient(s) with a stored stage or flags that differ from the "
                "records: run with --repair."
            )
