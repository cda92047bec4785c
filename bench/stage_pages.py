"""The pages that read the patient's stage and the visit schedule (issue 12), on the data of
bench/pages.py: home, patient list (page 1 and filtered by stage and by flags), the visit
schedule (page 1 and 2), with the old computations timed on the same data for comparison
(the stage and flags computed by EXISTS over every form table; the schedule's statuses in
Python over every visit).

Run (PostgreSQL):
    DATABASE_URL=postgres://edc@127.0.0.1:5432/edc_bench .venv/bin/python bench/stage_pages.py \
        1000 [--seed 100]

It creates a throwaway test database (test_<name>), seeds `--seed` patients as bench/pages.py
does (through the services; all of them 1000 when --seed is not given, ~2.5 s each on a busy
2-core machine), then clones them in SQL up to N with bench/scale.py's clone (every
patient-scoped table, the stored stage and flags with them), measures and drops the
database."""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pages  # noqa: E402  (bench/pages.py: django.setup(), seed, measure)
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.testing import mark_verified  # noqa: E402


def timed(label: str, work) -> None:
    work()
    times = []
    for _ in range(pages.REPEAT):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            work()
            times.append((time.perf_counter() - start) * 1000)
    print(
        f"{label:<44} median {statistics.median(times):7.1f} ms   worst {max(times):7.1f} ms"
        f"   {len(queries):3d} queries"
    )


def old_home_counts(user):
    """What the home page computed before PatientStatus: stages and flags by EXISTS."""
    from patients.models import Patient
    from patients.selectors import with_flag_count, with_stage

    qs = with_flag_count(with_stage(Patient.objects.for_user(user)))
    dict(qs.order_by().values_list("stage").annotate(n=Count("id")))
    qs.filter(has_flags=True).count()


def old_schedule(user):
    """What the schedule computed before: every visit's status in Python."""
    from followup.selectors import _followup_visits, schedule_rows
    from patients.models import Visit

    schedule_rows(visits=_followup_visits(Visit.objects.for_user(user)), today=timezone.localdate())


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 87
    seeded = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else n
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        start = time.perf_counter()
        user, patient = pages.seed(seeded)
        print(
            f"{connection.vendor}: seeded {seeded} patients in {time.perf_counter() - start:.1f} s"
        )
        if n > seeded:
            import scale  # bench/scale.py

            scale.clone(n, batch=3)
        client = Client()
        client.force_login(user)
        mark_verified(client, user)
        pages.measure(client, "home", reverse("home"))
        pages.measure(client, "patient list (page 1)", reverse("patients:patient-list"))
        pages.measure(
            client,
            "patient list (stage filter)",
            reverse("patients:patient-list") + "?stage=follow_up",
        )
        pages.measure(
            client, "patient list (flagged)", reverse("patients:patient-list") + "?flagged=1"
        )
        pages.measure(client, "visit schedule", reverse("followup:schedule"))
        pages.measure(client, "visit schedule (page 2)", reverse("followup:schedule") + "?page=2")
        pages.measure(
            client, "visit schedule (upcoming)", reverse("followup:schedule") + "?show=upcoming"
        )
        timed("old: stage counts + flagged (EXISTS)", lambda: old_home_counts(user))
        timed("old: schedule statuses in Python", lambda: old_schedule(user))
        from followup.selectors import visits_due_counts
        from patients.selectors import stage_counts

        timed("new: stage_counts (PatientStatus)", lambda: stage_counts(user=user))
        timed(
            "new: visits_due_counts (SQL)",
            lambda: visits_due_counts(user=user, today=timezone.localdate()),
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
