"""The results page at scale (issue 12): the page before (computed on every request) and
with the results job (computed once per data version, then read from the store).

Run (PostgreSQL, as in production), from the tree to measure:
    BENCH_DATABASE_URL=postgres://edc@127.0.0.1:5432/edc_bench_results \\
        .venv/bin/python bench/results.py [patients]

It seeds `patients` patients in a throwaway test database with bench/pages.py's seed (through
the services), then prints for the monitor's results page: the live computation
(reports.selectors.study_results, what the page did on every request before), the job's
computation (cold: the first view, run inline with CELERY_TASK_ALWAYS_EAGER), the page read
from the store (warm: median of 15, SQL statements), the data version query and its plan.
The database is dropped at the end."""

import os
import statistics
import sys
import time
from pathlib import Path

REPEAT = 15


def _standalone() -> None:
    """Django on the bench database, from the tree in the current directory."""
    sys.path.insert(0, str(Path.cwd()))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    if os.environ.get("BENCH_DATABASE_URL"):
        os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    os.environ.pop("REDIS_URL", None)  # no broker: the job runs inline (as the demo)
    import django

    django.setup()


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1000


def reverse(name: str) -> str:
    from django.urls import reverse as django_reverse

    return django_reverse(name)


def warm_results(clients: dict) -> None:
    """For bench/scale.py: compute the results job of each client's scope (inline: the bench
    has no broker) before the pages are timed, and print each computation's time (the cold
    figure), so the page rows time the page read from the store (the warm figure), as a user
    sees it between two data changes."""
    from reports.models import ResultsSnapshot

    for username, client in clients.items():
        response, ms = timed(lambda c=client: c.get(reverse("reports:results")))
        newest = ResultsSnapshot.objects.filter(status="done").order_by("-computed_at").first()
        if response.status_code != 200 or newest is None:
            continue  # a role that may not read the results
        print(
            f"  results job for {username:<12} {ms:9.1f} ms (computation {newest.duration_ms} ms, "
            f"data version {newest.data_version})",
            flush=True,
        )


def main() -> None:
    _standalone()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from pages import seed

    from accounts.testing import mark_verified
    from reports.selectors import study_results

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 87
    settings.CELERY_TASK_ALWAYS_EAGER = True
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        (user, _patient), seconds = timed(lambda: seed(n))
        print(f"{connection.vendor}: seeded {n} patients in {seconds / 1000:.0f} s")
        live = [timed(lambda: study_results(user=user))[1] for _ in range(3)]
        print(
            f"live computation (old page, each request)  median {statistics.median(live):8.1f} ms"
        )
        client = Client()
        client.force_login(user)
        mark_verified(client, user)
        url = reverse("reports:results")
        with CaptureQueriesContext(connection) as cold_queries:
            response, cold = timed(lambda: client.get(url))
        assert response.status_code == 200
        from reports.models import ResultsSnapshot

        job = ResultsSnapshot.objects.get()
        print(
            f"cold page (job inline)                     {cold:8.1f} ms   "
            f"{len(cold_queries):3d} queries   job {job.duration_ms} ms, "
            f"payload {len(str(job.payload)) // 1024} KB"
        )
        times, counts = [], []
        for _ in range(REPEAT):
            with CaptureQueriesContext(connection) as queries:
                response, ms = timed(lambda: client.get(url))
            assert b'data-testid="headline"' in response.content
            times.append(ms)
            counts.append(len(queries))
        print(
            f"warm page (stored)                         median {statistics.median(times):8.1f} ms"
            f"   worst {max(times):7.1f} ms   {counts[-1]:3d} queries"
        )
        from audit.version import DATA_VERSION_SQL, data_version

        version_times = [timed(data_version)[1] for _ in range(20)]
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM audit_chainhead")
            heads = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM audit_auditentry")
            rows = cursor.fetchone()[0]
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + DATA_VERSION_SQL)
            plan = "\n    ".join(r[0] for r in cursor.fetchall())
        print(
            f"data version {data_version()}: median {statistics.median(version_times):.2f} ms "
            f"({heads} chain heads, {rows} audit rows)\n    {plan}"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
