"""How fast the pages people use all day are, with a realistic amount of data.

Run (PostgreSQL recommended, as in production):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc .venv/bin/python bench/pages.py [patients]

It creates a throwaway test database (test_<name>), enrols `patients` patients (default 87,
the trial's size) through the real services with full screening, procedure day and M4,
then times each page (the monitor's, then the admin's user access page) over several requests
and prints the median, the worst and the number of SQL queries. The database is dropped at the end.
"""

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.testing import mark_verified  # noqa: E402

REPEAT = 15


def seed(n: int):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from demo.followup import NO_SPERM, demo_follow_up, demo_procedure_day
    from demo.patients import demo_screening
    from patients.services import consent_record, patient_enrol
    from trial.selectors import current_consent_version
    from trial.services import protocol_load, site_membership_add

    protocol = protocol_load(path=settings.PROTOCOL_FILE)
    site = protocol.sites.get(code="BEN")
    user = get_user_model().objects.create_user(
        "bench", password="bench-password-1", first_name="Bench", last_name="Doctor"
    )
    user.groups.add(Group.objects.get_or_create(name="Andrologist")[0])
    user.groups.add(Group.objects.get_or_create(name="Monitor")[0])
    site_membership_add(user=user, site=site)
    today = timezone.localdate()
    version = current_consent_version(protocol=protocol)
    last = None
    for i in range(n):
        p = patient_enrol(
            site=site,
            user=user,
            full_name=f"Bench {i}",
            date_of_birth=today - timedelta(days=365 * 33),
            enrolment_date=today - timedelta(days=400),
        )
        consent_record(
            patient=p,
            consent_version=version,
            obtained_by=user,
            user=user,
            signed_at=timezone.now() - timedelta(days=400),
        )
        demo_screening(p, user, on=today - timedelta(days=395))
        demo_procedure_day(p, user, user, on=today - timedelta(days=300))
        demo_follow_up(p, user, code="M4", semen=NO_SPERM, hormones=("22.0", "10.0", "3.3"))
        last = p
    return user, last


def admin_user():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    admin = get_user_model().objects.create_user("bench-admin", password="bench-password-1")
    admin.groups.add(Group.objects.get_or_create(name="Admin")[0])
    return admin


def measure(client: Client, label: str, url: str) -> None:
    client.get(url)  # warm up
    times = []
    for _ in range(REPEAT):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    print(
        f"{label:<28} median {statistics.median(times):7.1f} ms   worst {max(times):7.1f} ms"
        f"   {len(queries):3d} queries"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 87
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        start = time.perf_counter()
        user, patient = seed(n)
        seconds = time.perf_counter() - start
        print(
            f"{connection.vendor}: seeded {n} patients through the services in {seconds:.1f} s "
            f"({seconds / n * 1000:.0f} ms per patient, ~25 forms each)"
        )
        client = Client()
        client.force_login(user)
        mark_verified(client, user)  # two-factor sign-in: password and code, as a real user
        measure(client, "home", reverse("home"))
        measure(client, "patient list (page 1)", reverse("patients:patient-list"))
        measure(client, "patient page", reverse("patients:patient-detail", args=[patient.uuid]))
        scr = patient.visits.get(definition__code="SCR")
        measure(
            client,
            "CRF form (semen 1)",
            reverse("patients:crf-edit", args=[patient.uuid, scr.uuid, "semen_analysis", 1]),
        )
        measure(client, "visit schedule", reverse("followup:schedule"))
        measure(client, "audit trail (page 1)", reverse("audit:trail"))
        measure(client, "consent audit", reverse("monitoring:consent-audit"))
        # Everything was entered today for dates a year back: every form is a late entry.
        measure(client, "audit review (30 days)", reverse("monitoring:audit-review"))
        # Every live form of the study with its SDV status (a hash per form).
        measure(client, "SDV worklist", reverse("monitoring:sdv-list"))
        admin = Client()
        admin_account = admin_user()
        admin.force_login(admin_account)
        mark_verified(admin, admin_account)
        measure(admin, "user access (admin)", reverse("monitoring:user-access"))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
