"""Benchmark: what one CRF save costs, alone and 50 at once through gunicorn (issue 12: a save
in <= 12 SQL statements and <= 15 ms; 50 concurrent saves with 0 errors and p95 <= 400 ms).

1. In-process (Django's test client, DEBUG off): the median server time and the SQL statements
   of a correction of one form, through the CRF page's POST (session, sign-in checks, slot,
   save, redirect) and through `patients.services.crf_save` alone.
2. gunicorn (sync workers, as in production; kept connections) on a free port; CLIENTS users
   sign in through the real forms (password, then the authenticator's code), each opens a
   form, and 50 corrections are fired at once (a barrier releases the threads together):
   most of different forms, some of the same form from the same loaded version (the
   concurrency check then keeps the other's change or names the conflict: a 200 with the
   form again, not an error). Printed: errors (5xx or no answer), saved (302), re-shown
   (200), p50, p95 and max, per round and over all rounds.

Run it from the repository root (it makes its own throwaway database and drops it):

    .venv/bin/python bench/concurrent_save.py                 # 3 rounds, 3 workers
    BENCH_DATABASE_URL=postgres://edc@127.0.0.1:5432/edc_bench_save \\
        .venv/bin/python bench/concurrent_save.py --rounds 3 --workers 3 --keep
"""

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pdf_and_export import add_patients, drop_database, start_bench_study  # noqa: E402

DEFAULT_URL = "postgres://edc@127.0.0.1:5432/edc_bench_save"
CONCURRENT = 50
CLIENTS = 10
PASSWORD = "bench-pass-123"
# The server's settings: the test settings (no collectstatic, no HTTPS), connections kept
# across requests as in production (config.settings.production: CONN_MAX_AGE 60).
SETTINGS = """from config.settings.test import *  # noqa: F403
DATABASES["default"]["CONN_MAX_AGE"] = 60  # noqa: F405
DEBUG = False
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="bursts of 50 saves")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--repeat", type=int, default=50, help="in-process saves timed")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


# ---- set-up ----------------------------------------------------------------------------------


def make_clients(count: int) -> list:
    """Andrologists of every site, each with a confirmed authenticator."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from accounts.testing import authenticator_for_tests
    from core.roles import Role
    from trial.models import StudySite
    from trial.services import site_membership_add

    users = []
    for i in range(count):
        user = get_user_model().objects.create_user(username=f"bench_c{i}", password=PASSWORD)
        user.groups.add(Group.objects.get_or_create(name=Role.ANDROLOGIST)[0])
        for site in StudySite.objects.all():
            site_membership_add(user=user, site=site)
        authenticator_for_tests(user)
        users.append(user)
    return users


def targets() -> list[tuple[str, str, str, str, int]]:
    """(patient uuid, visit uuid, code, field to change, sequence) of the forms to correct:
    the screening hormones and examination and the month 4 hormones of each patient."""
    from labs.models import HormoneProfile
    from patients.models import Examination

    found = []
    for model, field in ((HormoneProfile, "lh"), (Examination, "weight_kg")):
        for record in model.objects.select_related("visit__patient").order_by("id"):
            found.append(
                (
                    str(record.visit.patient.uuid),
                    str(record.visit.uuid),
                    model.crf_code,
                    field,
                    record.sequence,
                )
            )
    return found


# ---- 1. in-process ---------------------------------------------------------------------------


def bench_in_process(repeat: int) -> None:
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    sys.path.insert(0, str(ROOT / "tests"))
    from factories import post_data  # noqa: E402 - the tests' valid CRF values

    from accounts.testing import mark_verified
    from audit.concurrency import record_version
    from labs.models import HormoneProfile
    from patients.models import Visit
    from patients.services import crf_save

    setup_test_environment()
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="bench_andro")
    client = Client()
    client.force_login(user)
    mark_verified(client, user)
    record = HormoneProfile.objects.select_related("visit__patient").order_by("id").first()
    visit, patient = record.visit, record.visit.patient
    url = reverse("patients:crf-edit", args=[patient.uuid, visit.uuid, "hormones", 1])

    timings, counts = [], []
    for i in range(repeat + 3):
        version = record_version(HormoneProfile.objects.get(pk=record.pk))
        data = post_data(
            "hormones",
            lh=str(Decimal("5.0") + i % 40),
            reason_for_change="Lab report re-read",
            loaded_version=str(version),
        )
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.post(url, data)
            elapsed = time.perf_counter() - start
        assert response.status_code == 302, response.content.decode()[:2000]
        if i >= 3:  # the first ones warm the caches
            timings.append(elapsed)
            counts.append(len(ctx.captured_queries))
    print(
        "  CRF page POST (a correction), in-process: "
        f"median {statistics.median(timings) * 1000:6.1f} ms, "
        f"p95 {pct(timings, 0.95) * 1000:6.1f} ms, {statistics.median(counts):.0f} SQL statements "
        "(BEGIN/COMMIT not counted)"
    )

    timings, counts = [], []
    for i in range(repeat + 3):
        stored = HormoneProfile.objects.get(pk=record.pk)
        stored.visit = Visit.objects.select_related("definition", "patient__site__protocol").get(
            pk=visit.pk
        )
        version = record_version(stored)
        stored.lh = Decimal("5.0") + (i + 1) % 40
        # In a transaction, as in a request (ATOMIC_REQUESTS): crf_save's block is a savepoint.
        with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            crf_save(record=stored, user=user, reason="Lab report re-read", loaded_version=version)
            elapsed = time.perf_counter() - start
        if i >= 3:
            timings.append(elapsed)
            counts.append(len(ctx.captured_queries))
    print(
        "  crf_save alone (a correction, consent read):   "
        f"median {statistics.median(timings) * 1000:6.1f} ms, "
        f"p95 {pct(timings, 0.95) * 1000:6.1f} ms, {statistics.median(counts):.0f} SQL statements"
    )


# ---- 2. gunicorn -----------------------------------------------------------------------------


class Browser:
    """One signed-in user: cookies by hand (http.client), one kept connection."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, data: dict | None = None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if data is not None:
            body = urlencode(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        text = response.read().decode()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, response.getheader("Location", ""), text

    @staticmethod
    def token(html: str) -> str:
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)

    def sign_in(self, username: str, code) -> None:
        from django.urls import reverse

        _, _, html = self.request("GET", reverse("login"))
        status, _, _ = self.request(
            "POST",
            reverse("login"),
            {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": self.token(html)},
        )
        assert status == 302, f"password step refused for {username}"
        _, _, html = self.request("GET", reverse("accounts:second-factor"))
        status, location, _ = self.request(
            "POST",
            reverse("accounts:second-factor"),
            {"code": code(), "csrfmiddlewaretoken": self.token(html)},
        )
        assert status == 302 and "second-factor" not in location, f"code refused for {username}"


def start_gunicorn(url: str, workers: int, settings_dir: str):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_concurrent_settings",
        "PYTHONPATH": os.pathsep.join([settings_dir, str(ROOT)]),
        "DATABASE_URL": url,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server, port
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("gunicorn did not start: " + server.stderr.read().decode()[-2000:])
        time.sleep(0.3)


def bench_gunicorn(url: str, rounds: int, workers: int) -> None:
    from django.urls import reverse

    sys.path.insert(0, str(ROOT / "tests"))
    from factories import post_data  # noqa: E402

    from accounts.testing import authenticator_for_tests, usable_code

    users = make_clients(CLIENTS)
    forms = targets()
    settings_dir = tempfile.mkdtemp(prefix="edc-bench-")
    Path(settings_dir, "bench_concurrent_settings.py").write_text(SETTINGS)
    server, port = start_gunicorn(url, workers, settings_dir)
    try:
        browsers = []
        for user in users:
            browser = Browser(port)
            browser.sign_in(user.username, lambda u=user: usable_code(authenticator_for_tests(u)))
            browsers.append(browser)
        # Warm every worker (imports, caches, kept connections) out of the measurement.
        for browser in browsers:
            browser.request("GET", reverse("home"))
        all_times, totals = [], {"errors": 0, "saved": 0, "shown": 0}
        for r in range(rounds):
            # 40 saves of 40 different forms, and 5 forms saved twice at once (10 saves).
            picks = [forms[(r * CONCURRENT + i) % len(forms)] for i in range(40)]
            picks += [picks[i] for i in range(5) for _ in range(2)]
            jobs = []
            for i, (patient, visit, code, field, sequence) in enumerate(picks):
                browser = browsers[i % len(browsers)]
                path = reverse("patients:crf-edit", args=[patient, visit, code, sequence])
                jobs.append((browser, path, code, field, i))
            # Each save's page is opened first (its CSRF token and loaded version), as a
            # user does; the second of a pair opens the same version as the first.
            prepared = []
            for browser, path, code, field, i in jobs:
                _, _, html = browser.request("GET", path)
                version = re.search(r'name="loaded_version" value="(\d*)"', html).group(1)
                value = str(Decimal("5.0") + (r * 7 + i) % 30)
                if field == "weight_kg":
                    value = str(Decimal("70") + (r * 7 + i) % 20)
                data = post_data(
                    code,
                    **{field: value},
                    reason_for_change="Bench: source re-read",
                    loaded_version=version,
                    csrfmiddlewaretoken=Browser.token(html),
                )
                prepared.append((browser, path, data))
            barrier = threading.Barrier(len(prepared))
            results = []

            def fire(job, barrier=barrier):
                browser, path, data = job
                # A browser's connection is not shared: each save gets its own.
                own = Browser(port)
                own.cookies = dict(browser.cookies)
                barrier.wait()
                start = time.perf_counter()
                try:
                    status, _, _ = own.request("POST", path, data)
                except OSError:
                    status = 0
                return status, time.perf_counter() - start

            with ThreadPoolExecutor(len(prepared)) as pool:
                results = list(pool.map(fire, prepared))
            times = [t for _, t in results]
            errors = sum(1 for s, _ in results if s == 0 or s >= 500 or s in (403, 404))
            saved = sum(1 for s, _ in results if s == 302)
            shown = sum(1 for s, _ in results if s == 200)
            totals["errors"] += errors
            totals["saved"] += saved
            totals["shown"] += shown
            all_times += times
            print(
                f"  round {r + 1}: {len(results)} saves at once: {errors} errors, {saved} saved, "
                f"{shown} shown again (conflict), p50 {pct(times, 0.5) * 1000:5.0f} ms, "
                f"p95 {pct(times, 0.95) * 1000:5.0f} ms, max {max(times) * 1000:5.0f} ms"
            )
        print(
            f"  all {len(all_times)}: {totals['errors']} errors, {totals['saved']} saved, "
            f"{totals['shown']} shown again, p50 {pct(all_times, 0.5) * 1000:5.0f} ms, "
            f"p95 {pct(all_times, 0.95) * 1000:5.0f} ms, max {max(all_times) * 1000:5.0f} ms "
            f"({workers} gunicorn workers, {os.cpu_count()} cores)"
        )
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


def main():
    args = parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    try:
        start_bench_study(url)
    except BaseException:
        drop_database(url)
        raise
    from django.db import connections
    from pdf_and_export import make_users

    try:
        andrologist, _ = make_users()
        start = time.perf_counter()
        add_patients(args.patients, andrologist, start=0)
        print(
            f"CRF saves: {args.patients} synthetic patients entered through the services in "
            f"{time.perf_counter() - start:.0f} s (database {urlsplit(url).path.lstrip('/')})"
        )
        bench_in_process(args.repeat)
        connections.close_all()
        bench_gunicorn(url, args.rounds, args.workers)
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
