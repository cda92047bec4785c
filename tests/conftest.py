"""Shared fixtures: the protocol, two sites, one user per role (alice/bob style, as in
healthchecks: `andrologist` works at `site`, `other_andrologist` at `other_site`), and
patients built through the real services."""

import os
import shutil
from datetime import UTC, datetime, time, timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from core.roles import Role
from patients import services
from trial.services import protocol_load, site_membership_add

REQUIRE_FULL_RUN = os.environ.get("EDC_REQUIRE_FULL_RUN") == "1"

# Every test runs at this instant unless it moves the clock itself (the `time_machine`
# fixture): a Wednesday, 10:00 in Cairo, outside daylight-saving time. `--clock` runs the
# whole suite at another instant (CI adds a night and a Friday), so no result may depend on
# the hour, the weekday or the machine's time zone.
DEFAULT_CLOCK = "2026-03-11T08:00:00Z"


# Hypothesis (tests/security/test_fuzz_forms.py): the same examples on every run
# (derandomized: a CI failure is reproducible, a pass means the same thing each time), no
# example database on disk, no per-example deadline (the clock is pinned and the machine
# shared). 10 examples a page and 30 a form keep the fuzz module near a minute on one core;
# EDC_FUZZ_EXAMPLES=200 is a deeper run by hand.
hypothesis_settings.register_profile(
    "edc",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("EDC_FUZZ_EXAMPLES", "10")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
hypothesis_settings.load_profile("edc")


def pytest_addoption(parser):
    parser.addoption(
        "--clock",
        default=os.environ.get("EDC_TEST_CLOCK", DEFAULT_CLOCK),
        help="ISO 8601 instant every test starts at (default %(default)s, or EDC_TEST_CLOCK)",
    )


def pytest_report_header(config):
    return f"clock pinned at {config.getoption('--clock')} (tests/conftest.py)"


def clock_instant(value: str) -> datetime:
    instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise pytest.UsageError(f"--clock needs a time zone (e.g. ...Z): {value!r}")
    return instant.astimezone(UTC)


@pytest.fixture(autouse=True)
def _pinned_clock(request, time_machine):
    """Start every test at the pinned instant. The clock then ticks on (timeouts, Celery and
    the browser still see time pass); a test moves it with `time_machine.move_to(...)`."""
    time_machine.move_to(clock_instant(request.config.getoption("--clock")), tick=True)


def _skip_reasons(item) -> list[str]:
    reasons = []
    if item.get_closest_marker("postgres") and not os.environ.get("DATABASE_URL", "").startswith(
        "postgres"
    ):
        reasons.append("needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)")
    if item.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        reasons.append("needs a Redis broker: set REDIS_URL=redis://... (CI does)")
    if item.get_closest_marker("browser") and not shutil.which("chromium"):
        reasons.append("needs Debian's chromium (apt-get install chromium)")
    return reasons


def pytest_collection_modifyitems(config, items):
    missing = set()
    for item in items:
        for reason in _skip_reasons(item):
            missing.add(reason)
            item.add_marker(pytest.mark.skip(reason=reason))
    if missing and REQUIRE_FULL_RUN:
        # CI promises the whole suite: a skip there is a broken environment, not a pass.
        raise pytest.UsageError("EDC_REQUIRE_FULL_RUN=1 but: " + "; ".join(sorted(missing)))


@pytest.fixture(scope="session", autouse=True)
def _celery_queue_per_test_process(worker_id):
    """Under pytest-xdist each test process gets its own queue, so a worker started by one
    process never runs another process's task against the wrong test database."""
    from config.celery_app import app

    queue = f"edc-test-{worker_id}"
    app.conf.task_default_queue = queue
    if os.environ.get("REDIS_URL"):
        # A message left by an interrupted earlier run must not reach this run's workers.
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)


# ---- two-factor sign-in ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _force_login_is_a_full_sign_in(request, monkeypatch):
    """Two-factor sign-in is on in the tests, as in production (EDC_REQUIRE_2FA). So that the
    many tests that start with `client.force_login(user)` keep testing their own feature,
    force_login() here is a complete sign-in, password AND second factor: the user gets a
    confirmed authenticator (if they have none) and the session is marked verified with it,
    as django_otp.login() leaves it after a good code (accounts.testing.mark_verified).

    A test of the sign-in itself opts out with `@pytest.mark.real_sign_in`: force_login() is
    then the password step only and the test types the codes (tests/core/test_two_factor.py).
    A login through the form goes through the real flow either way: `sign_in()` below."""
    if request.node.get_closest_marker("real_sign_in"):
        return
    from django.test import Client

    from accounts.testing import mark_verified

    password_only = Client.force_login

    def force_login(self, user, backend=None):
        password_only(self, user, backend)
        mark_verified(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)


def sign_in(client, username, password="correct-horse-battery"):
    """The real sign-in through the forms: the password, then the code the user's
    authenticator shows (a test authenticator is made if they have none). Returns the last
    response: the code page's redirect when both were accepted, else the refusing page."""
    from django.urls import reverse

    from accounts.testing import authenticator_for_tests, usable_code

    response = client.post(reverse("login"), {"username": username, "password": password})
    if response.status_code != 302:
        return response  # the password was refused (or the account is locked)
    user = get_user_model().objects.get(username=username)
    code = usable_code(authenticator_for_tests(user))
    return client.post(reverse("accounts:second-factor"), {"code": code})


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def protocol(db):
    return protocol_load(path=settings.PROTOCOL_FILE)


@pytest.fixture
def site(protocol):
    return protocol.sites.get(code="BEN")


@pytest.fixture
def other_site(protocol):
    return protocol.sites.get(code="AND")


def make_user(username, role, *sites, **extra):
    user = get_user_model().objects.create_user(
        username=username, password="correct-horse-battery", first_name=username.title(), **extra
    )
    # get_or_create: transactional (browser) tests flush the groups the migration made.
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    for s in sites:
        site_membership_add(user=user, site=s)
    return user


@pytest.fixture
def andrologist(site):
    return make_user("alice", Role.ANDROLOGIST, site)


@pytest.fixture
def other_andrologist(other_site):
    return make_user("bob", Role.ANDROLOGIST, other_site)


@pytest.fixture
def coordinator(site):
    return make_user("carol", Role.COORDINATOR, site)


@pytest.fixture
def lab_technician(site):
    return make_user("larry", Role.LAB_TECHNICIAN, site)


@pytest.fixture
def monitor(site, other_site):
    return make_user("mona", Role.MONITOR, site, other_site)


@pytest.fixture
def admin_user(site, other_site):
    return make_user("adam", Role.ADMIN, site, other_site, is_staff=True, is_superuser=True)


def enrol(site, user, *, name="Test Patient", age=32, days_ago=30):
    today = timezone.localdate()
    return services.patient_enrol(
        site=site,
        user=user,
        full_name=name,
        phone="+20 111",
        national_id="29001011234567",
        date_of_birth=today - timedelta(days=365 * age + 30),
        enrolment_date=today - timedelta(days=days_ago),
    )


def give_consent(patient, user, *, days_ago=30, version=None):
    from trial.selectors import current_consent_version

    signed = timezone.make_aware(
        datetime.combine(timezone.localdate() - timedelta(days=days_ago), time(9, 30))
    )
    # "Today at 09:30" is still ahead before 09:30 (a run at night): then it is signed now.
    signed = min(signed, timezone.localtime().replace(second=0, microsecond=0))
    return services.consent_record(
        patient=patient,
        user=user,
        obtained_by=user,
        consent_version=version or current_consent_version(protocol=patient.site.protocol),
        signed_at=signed,
        witness_name="W. Itness",
        patient_copy_given=True,
    )


@pytest.fixture
def patient(site, andrologist):
    return enrol(site, andrologist, name="Ahmed Secretname")


@pytest.fixture
def consented_patient(patient, andrologist):
    give_consent(patient, andrologist)
    return patient


@pytest.fixture
def other_patient(other_site, other_andrologist):
    p = enrol(other_site, other_andrologist, name="Other Sitename")
    give_consent(p, other_andrologist)
    return p


@pytest.fixture
def screening_visit(consented_patient):
    return consented_patient.visits.get(definition__code="SCR")


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def office_hours(time_machine):
    """For a test whose own data must be entered in working hours (the audit review flags
    the night and the weekend): move the clock to 10:00 in Cairo on the last Wednesday
    before the pinned instant. Ask for it before the fixtures that write data."""
    now = timezone.localtime()
    wednesday = now.date() - timedelta(days=(now.isoweekday() - 3) % 7)
    moment = timezone.make_aware(datetime.combine(wednesday, time(10, 0)))
    if moment > now:
        moment -= timedelta(days=7)
    time_machine.move_to(moment, tick=True)
    return moment
