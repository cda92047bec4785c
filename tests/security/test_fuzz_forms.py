"""Fuzzing every form with Hypothesis (issue 11): hostile input never makes a server error,
and a refused submission saves nothing (ASVS 4.0 V5.1.3-V5.1.4 input validation, V7.4.1 a
generic message, never a stack trace).

Two levels:
* the form class: `is_valid()` never raises, and a refused form says why (it has errors);
* the page: the same data POSTed (or sent as GET filters) through the test client, signed in
  as a user allowed to submit: never a 500; when the submission is refused, no table changed
  (the audit trail included: every table of the app is counted before and after) and the form
  comes back with what was typed.

The CRFs come from the registry (core.crf), so a new CRF is fuzzed without a change here; the
other forms and the list pages' filters are listed in TARGETS. Each field's values come from
its type (`values_for`): a valid value, hostile ones (huge and negative numbers, NaN and inf,
10,000 characters, dates in year 1 and 9999, malformed dates, markup and SQL) or nothing at
all (a missing field). Half of the examples change one to three fields of a valid submission,
so the hostile value reaches the services behind the form, not only its first check.

How: plain pytest functions. The data (patients at each stage, one user per role) is built
once per module, in a transaction rolled back at the end; each Hypothesis example runs in its
own savepoint, rolled back, so examples never see each other's rows. The Hypothesis profile
(tests/conftest.py) is derandomized: CI runs the same examples every time.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
import time_machine
from django import forms
from django.apps import apps
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from django.utils.html import escape
from hypothesis import example, given, settings
from hypothesis import strategies as st

from audit.concurrency import record_version
from audit.forms import AuditSearchForm
from core import crf
from core.roles import Role
from followup.forms import (
    AdverseEventForm,
    AdverseEventVoidForm,
    ConcomitantMedicationForm,
    ConcomitantMedicationVoidForm,
    UnscheduledVisitForm,
)
from followup.services import (
    ADVERSE_EVENTS,
    MEDICATIONS,
    end_of_study_visit_open,
    log_entry_create,
)
from monitoring.forms import (
    AccessReviewForm,
    AuditReviewForm,
    AuditReviewRecordForm,
    QueryOpenForm,
    QueryReplyForm,
    SignForm,
    UnlockForm,
    UserUnlockForm,
)
from monitoring.services import query_open
from patients.forms import ConsentForm, ConsentWithdrawForm, IdentityForm, PatientEnrolForm
from patients.models import Patient
from trial.models import ConsentVersion
from trial.services import protocol_load

from ..conftest import clock_instant, enrol, give_consent, make_user
from ..factories import FORM_EXTRAS, VALID, post_data
from ..followup.factories import AE, CM, PROCEDURE, as_post, procedure_day, save, values

# ---- values ----------------------------------------------------------------------------------

MISSING = object()  # the field is not sent at all

HOSTILE_TEXT = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'; DROP TABLE patients_patient; --",
    "1' OR '1'='1",
    "{{ request.user.password }}{% debug %}",
    '=HYPERLINK("http://evil.example","x")',
    "A" * 10_000,
    "\u202e\u0645\u0631\u062d\u0628\u0627 \U0001f9ec",
    "nul\x00byte",
    "   ",
    "\r\n\t",
]
HOSTILE_NUMBERS = [
    "NaN",
    "nan",
    "sNaN",
    "inf",
    "-inf",
    "Infinity",
    "-Infinity",
    "1e308",
    "-1e308",
    "1e-400",
    "1E+999999999",
    "9" * 40,
    "-" + "9" * 40,
    "9" * 5000,
    "-1",
    "-0",
    "0",
    "1,5",
    "0x10",
    "1_000",
    " 7 ",
    "\u0661\u0662",  # Arabic-Indic digits
    "2.5.5",
    "1e5",
    "",
]
HOSTILE_DATES = [
    "0001-01-01",
    "9999-12-31",
    "0000-00-00",
    "2026-02-30",
    "2026-13-01",
    "31/12/2026",
    "12/31/2026",
    "99999-01-01",
    "-2026-01-01",
    "2026-03-11T25:00",
    "today",
    "1e308",
    "",
]
HOSTILE_DATETIMES = [
    "0001-01-01T00:00",
    "0001-01-01 00:00",
    "9999-12-31T23:59",
    "2026-03-11T24:00",
    "2026-02-30T10:00",
    "2026-03-11",
    "2026-03-11T10:00+99:00",
    "",
]
HOSTILE_TIMES = ["25:00", "23:60", "-1:00", "00:00", "23:59:59.999999", "noon", "9999", ""]
HOSTILE_CHOICES = ["", "NOT-A-CODE", "<b>x</b>", "0", "-1", "99999999999999999999", "y"]
HOSTILE_UUIDS = ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "", "1" * 100]
HOSTILE_FILES = [
    ("scan.pdf", b"%PDF-1.4\n%%EOF"),
    ("scan.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
    ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ("empty.pdf", b""),
    ("../../etc/passwd", b"root:x:0:0"),
]

safe_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40
)  # no lone surrogates: a browser cannot send them either


def _numbers(field: forms.Field) -> st.SearchStrategy:
    return st.one_of(
        st.sampled_from(HOSTILE_NUMBERS),
        st.integers(min_value=-(10**20), max_value=10**20).map(str),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.floats().map(repr),
    )


def values_for(form_field: forms.Field, valid: str | None) -> st.SearchStrategy:
    """Valid, hostile or missing values for one field, from its type."""
    if isinstance(form_field, forms.ModelChoiceField):
        known = [str(pk) for pk in form_field.queryset.values_list("pk", flat=True)[:5]]
        hostile = st.sampled_from(known + HOSTILE_CHOICES)
    elif isinstance(form_field, forms.ChoiceField):
        codes = [str(c) for c, _ in form_field.choices if c != ""]
        hostile = st.one_of(st.sampled_from(codes + HOSTILE_CHOICES), safe_text)
    elif isinstance(form_field, forms.BooleanField | forms.NullBooleanField):
        hostile = st.sampled_from(["on", "true", "false", "1", "0", "", "unknown"])
    elif isinstance(form_field, forms.DateTimeField):
        hostile = st.one_of(
            st.sampled_from(HOSTILE_DATETIMES),
            st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M")),
        )
    elif isinstance(form_field, forms.DateField):
        hostile = st.one_of(st.sampled_from(HOSTILE_DATES), st.dates().map(date.isoformat))
    elif isinstance(form_field, forms.TimeField):
        hostile = st.one_of(
            st.sampled_from(HOSTILE_TIMES), st.times().map(lambda t: t.strftime("%H:%M"))
        )
    elif isinstance(form_field, forms.IntegerField | forms.DecimalField | forms.FloatField):
        hostile = _numbers(form_field)
    elif isinstance(form_field, forms.UUIDField):
        hostile = st.one_of(st.sampled_from(HOSTILE_UUIDS), st.uuids().map(str))
    elif isinstance(form_field, forms.FileField):
        return st.one_of(st.sampled_from(HOSTILE_FILES), st.just(MISSING))
    else:
        hostile = st.one_of(st.sampled_from(HOSTILE_TEXT), safe_text)
    options = [hostile, st.just(MISSING)]
    if valid is not None:
        options.insert(0, st.just(valid))
    return st.one_of(options)


@st.composite
def submissions(draw, fields: dict[str, forms.Field], valid: dict, extra: dict):
    """One submission: a valid one with one to three fields changed, or every field drawn.
    `extra`: parameters that are not form fields (a button's name, a page number) -> their
    strategies."""
    data = dict(valid)
    every = {**{name: values_for(f, valid.get(name)) for name, f in fields.items()}, **extra}
    names = sorted(every)
    if draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    else:
        chosen = names
    for name in chosen:
        value = draw(every[name])
        if value is MISSING:
            data.pop(name, None)
        else:
            data[name] = value
    return data


# ---- the world: patients at each stage, one user per role ------------------------------------


@dataclass
class World:
    users: dict
    patients: dict
    objects: dict = field(default_factory=dict)


def _build_world() -> World:
    protocol = protocol_load(path=django_settings.PROTOCOL_FILE)
    site, other_site = protocol.sites.get(code="BEN"), protocol.sites.get(code="AND")
    users = {
        "alice": make_user("alice", Role.ANDROLOGIST, site),
        "carol": make_user("carol", Role.COORDINATOR, site),
        "mona": make_user("mona", Role.MONITOR, site, other_site),
        "adam": make_user("adam", Role.ADMIN, site, other_site, is_staff=True, is_superuser=True),
    }
    alice = users["alice"]
    today = timezone.localdate()
    # Stages: "prepared" (aspirate and product entered, injection not yet; screening empty),
    # "treated" (injected 120 days ago: month 4 is due), "ending" (end of study opened),
    # "consented" (nothing entered).
    prepared = enrol(site, alice, name="Prepared Patient")
    give_consent(prepared, alice)
    d0 = prepared.visits.get(definition__code="D0")
    save("bm_aspirate", d0, alice, on=today)
    save("msc_preparation", d0, alice, on=today)
    treated = enrol(site, alice, name="Treated Patient", days_ago=160)
    give_consent(treated, alice, days_ago=160)
    procedure_day(treated, alice, on=today - timedelta(days=120))
    ending = enrol(site, alice, name="Ending Patient", days_ago=300)
    give_consent(ending, alice, days_ago=300)
    procedure_day(ending, alice, on=today - timedelta(days=250))
    end_of_study_visit_open(patient=ending, user=alice)
    consented = enrol(site, alice, name="Consented Patient")
    give_consent(consented, alice)
    patients = {"prepared": prepared, "treated": treated, "ending": ending, "consented": consented}
    world = World(users=users, patients=patients)
    world.objects["ae"] = log_entry_create(
        ADVERSE_EVENTS,
        patient=treated,
        data=dict(AE, onset_date=today - timedelta(days=3)),
        user=alice,
    )
    world.objects["cm"] = log_entry_create(
        MEDICATIONS,
        patient=treated,
        data=dict(CM, start_date=today - timedelta(days=40)),
        user=alice,
    )
    injection = crf.get("injection").model.objects.get(visit__patient=treated)
    world.objects["injection"] = injection
    world.objects["query"] = query_open(
        record=injection, user=users["mona"], field_name="", question="Time of injection?"
    )
    world.objects["consent"] = consented.consents.get()
    return world


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, request):
    """Built once for the module at the pinned instant, rolled back at its end."""
    with (
        django_db_blocker.unblock(),
        time_machine.travel(clock_instant(request.config.getoption("--clock")), tick=True),
        transaction.atomic(),
    ):
        yield _build_world()
        transaction.set_rollback(True)


def crf_slot(world: World, code: str):
    """The first visit of the world's patients that schedules `code` and has it empty."""
    for patient in world.patients.values():
        for visit in patient.visits.select_related("definition").order_by("definition__order"):
            codes = {f["code"] for f in visit.definition.forms}
            model = crf.get(code).model
            if code in codes and not model.objects.filter(visit=visit, sequence=1).exists():
                return patient, visit
    raise AssertionError(f"no visit of the fuzz world takes {code}: add a patient stage")


def crf_valid(code: str, visit) -> dict:
    """A valid submission of one CRF, as a browser posts it."""
    on = max(visit.patient.enrolment_date, timezone.localdate() - timedelta(days=1))
    if code in VALID:
        data = post_data(code, assessment_date=on)
    elif code in PROCEDURE:
        data = as_post(values(code, on=on))
    else:  # a CRF with no valid values in the factories yet: every value is drawn
        data = {}
    return {**FORM_EXTRAS.get(code, {}), **data}


# ---- targets: each form, how to build it, where it is posted ---------------------------------


@dataclass
class Target:
    name: str
    form: Callable  # (world, data, files) -> the bound form
    valid: Callable = lambda world: {}  # (world) -> a valid submission
    url: Callable | None = None  # (world) -> the page's address; None: form level only
    username: str = "alice"
    method: str = "post"
    extra: dict = field(default_factory=dict)  # parameters that are not form fields
    file_field: str | None = None
    # Tables a refused submission may write: a failed signature is logged (AuthEvent) and
    # counted towards the lockout (axes), by design (21 CFR 11.300(d)).
    may_log: tuple = ()
    # Server errors the fuzzing found, kept as examples run every time (changes to the valid
    # submission; MISSING removes a field).
    regressions: list = field(default_factory=list)


def _crf_target(code: str) -> Target:
    def form(world, data, files):
        patient, visit = crf_slot(world, code)
        definition = crf.get(code)
        return definition.form_class(
            data, instance=definition.model(visit=visit, sequence=1), initial={}
        )

    def valid(world):
        return crf_valid(code, crf_slot(world, code)[1])

    def url(world):
        patient, visit = crf_slot(world, code)
        return f"/patients/{patient.uuid}/visits/{visit.uuid}/{code}/1/"

    return Target(f"crf:{code}", form, valid, url, extra={"save_next": st.sampled_from(["", "1"])})


def _today():
    return timezone.localdate()


def _patient(world, stage="treated") -> Patient:
    return world.patients[stage]


OTHER_TARGETS = [
    Target(
        "enrol",
        lambda w, d, f: PatientEnrolForm(d, user=w.users["alice"]),
        lambda w: {
            "site": str(_patient(w).site.pk),
            "enrolment_date": _today().isoformat(),
            "date_of_birth": "1992-05-04",
            "full_name": "Fuzz Patient",
            "phone": "+20 100 000",
            "national_id": "29205041234567",
            "address": "Cairo",
            "form_token": str(uuid.uuid4()),
        },
        lambda w: "/patients/enrol/",
    ),
    Target(
        "identity",
        lambda w, d, f: IdentityForm(d, instance=_patient(w).identity),
        lambda w: {
            "full_name": "Treated Patient",
            "phone": "+20 111",
            "national_id": "29001011234567",
            "address": "Giza",
            "reason_for_change": "Moved house",
            "loaded_version": str(record_version(_patient(w).identity)),
        },
        lambda w: f"/patients/{_patient(w).uuid}/identity/",
    ),
    Target(
        "consent",
        lambda w, d, f: ConsentForm(
            d,
            f,
            patient=_patient(w, "consented"),
            obtained_by_choices=type(w.users["alice"]).objects.all(),
        ),
        lambda w: {
            "consent_version": str(ConsentVersion.objects.order_by("-effective_date")[0].pk),
            "signed_at": (timezone.localtime() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            "obtained_by": str(w.users["alice"].pk),
            "witness_name": "W. Itness",
            "patient_copy_given": "on",
            "form_token": str(uuid.uuid4()),
        },
        lambda w: f"/patients/{_patient(w, 'consented').uuid}/consent/",
        file_field="document",
    ),
    Target(
        "consent-withdraw",
        lambda w, d, f: ConsentWithdrawForm(d),
        lambda w: {"withdrawn_on": _today().isoformat(), "withdrawal_reason": "Moved abroad"},
        lambda w: (
            f"/patients/{_patient(w, 'consented').uuid}/consent/"
            f"{w.objects['consent'].uuid}/withdraw/"
        ),
    ),
    Target(
        "adverse-event",
        lambda w, d, f: AdverseEventForm(d),
        lambda w: (
            as_post(dict(AE, onset_date=_today() - timedelta(days=2)))
            | {"form_token": str(uuid.uuid4())}
        ),
        lambda w: f"/followup/patients/{_patient(w).uuid}/adverse-events/new/",
    ),
    Target(
        "adverse-event-edit",
        lambda w, d, f: AdverseEventForm(d, instance=w.objects["ae"]),
        lambda w: (
            as_post(dict(AE, onset_date=_today() - timedelta(days=3)))
            | {
                "reason_for_change": "Grade re-assessed",
                "loaded_version": str(record_version(w.objects["ae"])),
            }
        ),
        lambda w: f"/followup/patients/{_patient(w).uuid}/adverse-events/{w.objects['ae'].uuid}/",
    ),
    Target(
        "adverse-event-void",
        lambda w, d, f: AdverseEventVoidForm(d),
        lambda w: {"reason": "Entered for the wrong patient"},
        lambda w: (
            f"/followup/patients/{_patient(w).uuid}/adverse-events/{w.objects['ae'].uuid}/void/"
        ),
    ),
    Target(
        "medication",
        lambda w, d, f: ConcomitantMedicationForm(d),
        lambda w: (
            as_post(dict(CM, start_date=_today() - timedelta(days=10)))
            | {"form_token": str(uuid.uuid4())}
        ),
        lambda w: f"/followup/patients/{_patient(w).uuid}/medications/new/",
    ),
    Target(
        "medication-edit",
        lambda w, d, f: ConcomitantMedicationForm(d, instance=w.objects["cm"]),
        lambda w: (
            as_post(dict(CM, start_date=_today() - timedelta(days=40)))
            | {
                "reason_for_change": "Dose from the prescription",
                "loaded_version": str(record_version(w.objects["cm"])),
            }
        ),
        lambda w: f"/followup/patients/{_patient(w).uuid}/medications/{w.objects['cm'].uuid}/",
    ),
    Target(
        "medication-void",
        lambda w, d, f: ConcomitantMedicationVoidForm(d),
        lambda w: {"reason": "Entered twice"},
        lambda w: f"/followup/patients/{_patient(w).uuid}/medications/{w.objects['cm'].uuid}/void/",
    ),
    Target(
        "unscheduled-visit",
        lambda w, d, f: UnscheduledVisitForm(d),
        lambda w: {"planned_date": _today().isoformat()},
        lambda w: f"/followup/patients/{_patient(w).uuid}/visits/unscheduled/",
    ),
    Target(
        "query-open",
        lambda w, d, f: QueryOpenForm(d, record=w.objects["injection"]),
        lambda w: {
            "field_name": "left_volume_ml",
            "question": "Volume checked?",
            "form_token": str(uuid.uuid4()),
        },
        lambda w: (
            f"/monitoring/queries/new/{_patient(w).uuid}/"
            f"{w.objects['injection'].visit.uuid}/injection/1/"
        ),
        username="mona",
    ),
    Target(
        "query-reply",
        lambda w, d, f: QueryReplyForm(d),
        lambda w: {"text": "Checked against the source", "action": "answer"},
        lambda w: f"/monitoring/queries/{w.objects['query'].uuid}/",
        extra={"action": st.sampled_from(["answer", "close", "reopen", "", "delete", "<b>"])},
    ),
    Target(
        "sign",
        lambda w, d, f: SignForm(d, first_signature=True),
        lambda w: {
            "username": "alice",
            "password": "correct-horse-battery",
            "meaning": "INVESTIGATOR_APPROVAL",
            "agree": "on",
        },
        lambda w: f"/monitoring/sign/{_patient(w).uuid}/{w.objects['injection'].visit.uuid}/",
        may_log=("audit.AuthEvent", "axes.AccessAttempt", "axes.AccessFailureLog"),
    ),
    Target(
        "signature-unlock",
        lambda w, d, f: UnlockForm(d),
        lambda w: {"reason": "Correction after monitoring"},
    ),
    Target(
        "user-unlock",
        lambda w, d, f: UserUnlockForm(d),
        lambda w: {"reason": "Phoned the user, identity checked"},
        lambda w: "/monitoring/user-access/carol/unlock/",
        username="adam",
    ),
    Target(
        "access-review",
        lambda w, d, f: AccessReviewForm(d),
        lambda w: {"note": "Every account checked"},
        lambda w: "/monitoring/user-access/review/",
        username="adam",
    ),
    Target(
        "audit-search",
        lambda w, d, f: AuditSearchForm(d),
        lambda w: {
            "study_id": _patient(w).study_id,
            "username": "alice",
            "form_code": "injection",
            "date_from": (_today() - timedelta(days=30)).isoformat(),
            "date_to": _today().isoformat(),
        },
        lambda w: "/audit/",
        username="mona",
        method="get",
        regressions=[{"date_from": "0001-01-01", "date_to": "9999-12-31", "format": "csv"}],
        extra={
            "format": st.sampled_from(["", "csv", "xml", "<b>"]),
            "page": st.sampled_from(["1", "2", "-1", "0", "9" * 30, "last", "NaN"]),
            # The trail's keyset cursors (audit.selectors.trail_page), tampered.
            "older": st.sampled_from(["", "1_1", "-1_-1", "9" * 30, "999999999999999999_1"]),
            "newer": st.sampled_from(["", "0_0", "x_y", "1773216000000000_" + "9" * 18]),
        },
    ),
    Target(
        "audit-review",
        lambda w, d, f: AuditReviewForm(
            d,
            sites=list(_patient(w).site.protocol.sites.all()),
            default_period=(_today(), _today()),
        ),
        lambda w: {
            "site": "BEN",
            "date_from": (_today() - timedelta(days=30)).isoformat(),
            "date_to": _today().isoformat(),
        },
        lambda w: "/audit/review/",
        username="mona",
        method="get",
        regressions=[{"date_to": "9999-12-31"}, {"date_to": "9999-12-31", "format": "csv"}],
        extra={
            "format": st.sampled_from(["", "csv"]),
            "section": st.sampled_from(["", "night", "late", "<b>", "x" * 300]),
        },
    ),
    Target(
        "audit-review-record",
        lambda w, d, f: AuditReviewRecordForm(d),
        lambda w: {
            "site": "BEN",
            "date_from": (_today() - timedelta(days=30)).isoformat(),
            "date_to": _today().isoformat(),
            "note": "Late entries at BEN: site retrained",
        },
        lambda w: "/audit/review/record/",
        username="mona",
        # A period ending on 9999-12-31 overflowed (monitoring.audit_review: the next day's
        # midnight).
        regressions=[{"date_to": "9999-12-31"}, {"date_from": "0001-01-01"}],
    ),
]


class Filters(forms.Form):
    """The filters of a list page or an export button, which the views read from the query
    string or the POST body without a form class: described here as one, so the same
    strategies fuzz them."""

    def __init__(self, data=None, *, names=()):
        super().__init__(data)
        for name in names:
            self.fields[name] = forms.CharField(required=False)


def _filters(name, names, valid, url, username="mona", method="get", extra=None, **more):
    return Target(
        name,
        lambda w, d, f: Filters(d, names=names),
        valid,
        url,
        username=username,
        method=method,
        extra=extra or {},
        **more,
    )


PAGE = {"page": st.sampled_from(["1", "2", "0", "-1", "9" * 30, "last", "NaN", ""])}
FILTER_TARGETS = [
    _filters(
        "filters:patient-list",
        ["site", "stage", "flagged", "q"],
        lambda w: {"site": "BEN", "stage": "screening", "flagged": "1", "q": "BEN-00"},
        lambda w: "/patients/",
        extra=PAGE,
        regressions=[{"q": "nul\x00byte"}, {"site": "\x00"}],
    ),
    _filters(
        "filters:schedule",
        ["site", "show"],
        lambda w: {"site": "BEN", "show": "all"},
        lambda w: "/followup/schedule/",
        username="carol",
    ),
    _filters(
        "filters:reminders",
        ["status"],
        lambda w: {"status": "sent"},
        lambda w: "/followup/reminders/",
        username="carol",
        extra=PAGE,
    ),
    _filters(
        "filters:queries",
        ["status", "site"],
        lambda w: {"status": "open", "site": "BEN"},
        lambda w: "/monitoring/queries/",
        extra=PAGE,
        # A NUL in a filter reached PostgreSQL (core.nul_guard).
        regressions=[{"site": "nul\x00byte"}],
    ),
    _filters(
        "filters:sdv",
        ["status", "site"],
        lambda w: {"status": "", "site": "BEN"},
        lambda w: "/monitoring/sdv/",
        extra=PAGE,
        regressions=[{"site": "nul\x00byte"}],
    ),
    _filters(
        "filters:consent-audit",
        ["site", "problem", "format"],
        lambda w: {"site": "BEN", "problem": "", "format": ""},
        lambda w: "/monitoring/consent-audit/",
        extra=PAGE,
    ),
    _filters(
        "filters:user-access",
        ["format"],
        lambda w: {"format": "csv"},
        lambda w: "/monitoring/user-access/",
        username="adam",
    ),
    _filters(
        "filters:results",
        ["site"],
        lambda w: {"site": "BEN"},
        lambda w: "/reports/results/",
        # A view asks the results job for its scope's computation: a cache row, not data.
        may_log=("reports.ResultsSnapshot",),
    ),
    _filters(
        "filters:results-csv",
        ["site"],
        lambda w: {"site": "BEN"},
        lambda w: "/reports/results.csv",
    ),
    _filters(
        "filters:results-pdf",
        ["site"],
        lambda w: {"site": "BEN"},
        lambda w: "/reports/results/pdf/",
        method="post",
    ),
    _filters(
        "filters:pdf-request",
        ["kind", "patient", "visit", "slot", "site"],
        lambda w: {
            "kind": "form",
            "patient": str(_patient(w).uuid),
            "visit": "",
            "slot": f"{w.objects['injection'].visit.uuid}/injection/1",
            "site": str(_patient(w).site.uuid),
        },
        lambda w: "/exports/pdf/",
        username="carol",
        method="post",
        extra={"kind": st.sampled_from(["form", "visit", "casebook", "site_casebooks", "x"])},
        # A patient or site id that is not a UUID was a 500 (core.scoping).
        regressions=[
            {"patient": "<script>alert(1)</script>"},
            {"kind": "site_casebooks", "site": "1"},
        ],
    ),
]

CRF_TARGETS = [_crf_target(d.code) for d in crf.all_definitions()]
TARGETS = CRF_TARGETS + OTHER_TARGETS + FILTER_TARGETS
HTTP_TARGETS = [t for t in TARGETS if t.url is not None]


# ---- checks ----------------------------------------------------------------------------------


def _tables(skip=()) -> list[str]:
    """Every table of the app and of the libraries that keep users' data; sessions only
    hold the signed-in user (saved on each request, by design)."""
    tables = []
    for model in apps.get_models():
        label = model._meta.label
        if model._meta.proxy or not model._meta.managed or label in skip:
            continue
        if model._meta.app_label in ("sessions", "contenttypes", "admin"):
            continue
        tables.append(model._meta.db_table)
    return sorted(set(tables))


def row_counts(tables: list[str]) -> dict[str, int]:
    """Every table's row count, in one query."""
    quote = connection.ops.quote_name
    sql = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {quote(t)})" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(zip(tables, cursor.fetchone(), strict=True))


def text_fields(form: forms.BaseForm) -> list[str]:
    """Fields whose typed text is shown again as typed (not choices, files, passwords)."""
    return [
        name
        for name, f in form.fields.items()
        if not isinstance(
            f,
            forms.ChoiceField | forms.BooleanField | forms.FileField | forms.ModelChoiceField,
        )
        and not isinstance(f.widget, forms.PasswordInput | forms.HiddenInput)
    ]


def _as_files(target: Target, data: dict) -> tuple[dict, dict]:
    data = dict(data)
    files = {}
    if target.file_field and target.file_field in data:
        name, content = data.pop(target.file_field)
        files[target.file_field] = SimpleUploadedFile(name, content)
    return data, files


def _submit(client: Client, target: Target, world: World, data: dict):
    url = target.url(world)
    data, files = _as_files(target, data)
    if target.method == "get":
        response = client.get(url, data)
    else:
        response = client.post(url, {**data, **files})
    if response.streaming:
        b"".join(response.streaming_content)  # a CSV fails while it streams, not before
    return response


COUNTER = {"form": 0, "http": 0, "accepted": 0, "refused": 0}
# Validating a form costs a few milliseconds, a page a few hundred: the form level gets three
# times the profile's examples (tests/conftest.py), the pages the profile's count.
FORM_EXAMPLES = 3 * settings.default.max_examples


@pytest.fixture(scope="module", autouse=True)
def _report_submissions():
    """The figure for the issue's closing note (seen with -s): forms x examples."""
    yield
    print(
        f"\nfuzz: {COUNTER['form']} form validations of {len(TARGETS)} forms, "
        f"{COUNTER['http']} submissions to {len(HTTP_TARGETS)} pages "
        f"({COUNTER['accepted']} accepted, {COUNTER['refused']} refused), 0 server errors"
    )


# ---- the tests -------------------------------------------------------------------------------


def _ids(targets):
    return [t.name for t in targets]


def with_regressions(check, target: Target, valid: dict):
    """The target's regression examples, run before the generated ones."""
    for changes in target.regressions:
        data = {**valid, **changes}
        check = example(data={k: v for k, v in data.items() if v is not MISSING})(check)
    return check


@pytest.mark.parametrize("target", TARGETS, ids=_ids(TARGETS))
def test_a_form_never_raises_and_a_refused_form_says_why(world, db, target):
    fields = target.form(world, None, None).fields
    valid = target.valid(world)

    @settings(max_examples=FORM_EXAMPLES)
    @given(data=submissions(fields, valid, target.extra))
    def check(data):
        COUNTER["form"] += 1
        posted, files = _as_files(target, data)
        with transaction.atomic():
            form = target.form(world, posted, files)
            if not form.is_valid():
                assert form.errors, "refused without saying why"
            transaction.set_rollback(True)

    with_regressions(check, target, valid)()


@pytest.mark.parametrize("target", HTTP_TARGETS, ids=_ids(HTTP_TARGETS))
def test_a_page_never_fails_and_a_refused_submission_saves_nothing(world, db, target):
    client = Client()
    client.force_login(world.users[target.username])
    fields = target.form(world, None, None).fields
    tables = _tables(skip=target.may_log)
    valid = target.valid(world)

    @given(data=submissions(fields, valid, target.extra))
    def check(data):
        COUNTER["http"] += 1
        with transaction.atomic():
            posted, files = _as_files(target, data)
            form_refuses = not target.form(world, posted, files).is_valid()
            before = row_counts(tables)
            response = _submit(client, target, world, data)
            assert response.status_code < 500, response.content[:2000]
            refused = response.status_code == 200 or response.status_code >= 400
            COUNTER["refused" if refused or form_refuses else "accepted"] += 1
            if target.method == "get" or refused or form_refuses:
                # A filter (GET) never writes; a refused submission has written nothing.
                assert row_counts(tables) == before, "a refused submission changed the data"
            if target.method == "post" and response.status_code == 200:
                html = response.content.decode()
                for name in text_fields(target.form(world, posted, files)):
                    typed = posted.get(name)
                    if isinstance(typed, str) and typed.strip():
                        assert escape(typed) in html, f"{name}: what was typed is lost"
            transaction.set_rollback(True)

    with_regressions(check, target, valid)()


def test_the_fuzz_covers_every_registered_crf():
    assert {t.name for t in CRF_TARGETS} == {f"crf:{d.code}" for d in crf.all_definitions()}
