"""Benchmark: every page at the trial's size (87 patients) and at N patients (issue 12).

1. A throwaway database (`edc_bench_scale`, dropped at the end unless --keep), the protocol and
   the demo users (`seed_demo`'s), and the synthetic 87-patient cohort of `seed_demo --cohort`
   built through the real services, enrolled over the last two years (not the cohort's own
   2020 dates), plus, through the services too: data queries (open, answered, closed), SDV
   marks, visit signatures, adverse events and medications, so no page is measured empty.
2. Every page, per role that may open it (tests/security/access_table.py): SQL statements and
   the median time of --repeat requests (in-process test client, DEBUG off).
3. The cohort cloned in SQL up to N patients: remapped primary and foreign keys, new uuids, new
   patient numbers and study ids per site, every patient-scoped table and the audit trail. The
   database triggers stay ON: the audit capture trigger sees `edc.audit_context = 'app'`, as it
   does for the services' writes (the clone writes the trail itself: the source patient's rows,
   remapped), and the hash-chain trigger chains every cloned audit row (inserted in chain
   order, one statement per batch of copies). The clone's audit timestamps (and records'
   created_at/updated_at) are moved back by 0-23 months per copy, so the trail spreads over two
   years and a 30-day window holds about 1/24 of the copies.
4. The same pages at N, and a table: page, role, queries@87, ms@87, queries@N, ms@N, ratio,
   against the issue's goals (<= 300 ms, <= 12 queries, ratio <= 1.5).
5. Casebook PDF, full export vs COPY (bench/pdf_and_export.py's functions) and peak RSS.

    .venv/bin/python bench/scale.py --patients 2000
    .venv/bin/python bench/scale.py                         # 10,000 patients
    BENCH_DATABASE_URL=postgres://edc@127.0.0.1:5432/edc_bench_me .venv/bin/python bench/scale.py
"""

import argparse
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pdf_and_export import (  # noqa: E402
    bench_export,
    bench_pdf,
    drop_database,
    make_users,
    recreate_database,
)
from results import warm_results  # noqa: E402

DEFAULT_URL = "postgres://edc@127.0.0.1:5432/edc_bench_scale"
GOAL_MS, GOAL_QUERIES, GOAL_RATIO = 300, 12, 1.5
# Past this many ms for one request, a page is timed fewer times (the slowest pages at 10,000
# patients take a minute each).
SLOW_MS = 3000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7, help="requests per page (median kept)")
    parser.add_argument("--batch", type=int, default=10, help="copies of the cohort per INSERT")
    parser.add_argument("--no-extras", action="store_true", help="skip the PDF and export")
    parser.add_argument(
        "--verify", action="store_true", help="check the chains and signatures after the clone"
    )
    parser.add_argument(
        "--extras-only",
        action="store_true",
        help="only the PDF, export and RSS, on a database kept by an earlier --keep run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


# ---- 1. the cohort, through the services ------------------------------------------------------


def seed(today: date) -> dict:
    """The protocol, seed_demo's users and the cohort, enrolled from two years ago (every 3
    days: the last patient's month 12 is two months ago). Returns the users by username."""
    from django.conf import settings

    from demo.cohort import seed_cohort
    from demo.management.commands.seed_demo import Command
    from reports.cohort import COHORT_DRAWS
    from trial.services import protocol_load

    protocol = protocol_load(path=settings.PROTOCOL_FILE)
    users = Command()._users(protocol)
    draws = dict(
        COHORT_DRAWS,
        first_enrolment=(today - timedelta(days=730)).isoformat(),
        enrolment_every_days=3,
    )
    seed_cohort(protocol=protocol, users=users, draws=draws)
    return users


def seed_monitoring_and_logs(users: dict) -> dict[str, int]:
    """Queries, SDV marks, visit signatures, adverse events and medications, through the
    services, on a share of the cohort's patients. Returns what was made."""
    from django.core.exceptions import ValidationError
    from django.test import RequestFactory

    from core import crf
    from demo.followup import (
        CLOMIPHENE,
        PARACETAMOL,
        demo_medication,
        demo_post_procedure_pain,
    )
    from demo.management.commands.seed_demo import DEMO_PASSWORD
    from monitoring import services as monitoring
    from monitoring.models import Signature
    from patients.models import Patient

    monitor = users["monitor"]
    doctors = {"BEN": users["andrologist"], "AND": users["andrologist2"]}
    made = dict.fromkeys(("queries", "sdv", "signatures", "adverse events", "medications"), 0)
    for i, patient in enumerate(Patient.objects.select_related("site").order_by("pk")):
        doctor = doctors[patient.site.code]
        visits = {v.definition.code: v for v in patient.visits.select_related("definition")}
        scr, m4 = visits["SCR"], visits.get("M4")
        hormones = crf.get("hormones").model.objects.get(visit=scr, sequence=1)
        if i % 3 == 0:
            query = monitoring.query_open(
                record=hormones, field_name="fsh", question="Please check FSH.", user=monitor
            )
            made["queries"] += 1
            if i % 6 == 0:
                monitoring.query_answer(query=query, text="Checked: as on the report.", user=doctor)
            if i % 12 == 0:
                monitoring.query_close(query=query, text="Thank you.", user=monitor)
        if i % 2 == 0:
            for visit in (scr, m4):
                for definition in crf.all_definitions():
                    model = definition.model
                    if not hasattr(model, "visit"):
                        continue
                    for record in model.objects.filter(visit=visit, voided_at__isnull=True):
                        monitoring.source_verify(record=record, user=monitor)
                        made["sdv"] += 1
        if i % 4 == 1 and m4 is not None:
            request = RequestFactory().post("/", REMOTE_ADDR="127.0.0.1")
            request.user = doctor
            try:
                monitoring.signature_sign(
                    request=request,
                    patient=patient,
                    visit=m4,
                    username=doctor.username,
                    password=DEMO_PASSWORD,
                    meaning=Signature.Meaning.INVESTIGATOR_APPROVAL,
                    user=doctor,
                    agree=True,
                )
                made["signatures"] += 1
            except ValidationError as error:
                print(f"  (no signature for {patient.study_id}: {error.messages[0]})")
        procedure_on = visits["D0"].target_date if "D0" in visits else None
        if procedure_on is None:
            continue
        if i % 5 == 0:
            demo_post_procedure_pain(patient, doctor, procedure_on=procedure_on)
            made["adverse events"] += 1
        if i % 4 == 0:
            for medication in (CLOMIPHENE, PARACETAMOL):
                demo_medication(patient, doctor, medication=medication, procedure_on=procedure_on)
                made["medications"] += 1
    return made


# ---- 2. the pages -----------------------------------------------------------------------------


@dataclass
class Timing:
    queries: int | None = None
    ms: float | None = None
    error: str = ""
    runs: int = 0


@dataclass
class Row:
    page: str
    role: str
    at_small: Timing = field(default_factory=Timing)
    at_large: Timing = field(default_factory=Timing)


def pages(users: dict) -> list[tuple[str, str, str]]:
    """(page, username, url) for every page of the app and every role that may open it."""
    from django.urls import reverse

    from patients.models import Patient

    patient = Patient.objects.filter(site__code="BEN").order_by("number").first()
    scr = patient.visits.get(definition__code="SCR")
    everyone = ("andrologist", "coordinator", "labtech", "monitor", "admin")
    auditors = ("monitor", "admin")
    listing = [
        ("home", everyone, reverse("home")),
        ("patient list, page 1", everyone, reverse("patients:patient-list")),
        ("patient page", everyone, reverse("patients:patient-detail", args=[patient.uuid])),
        (
            "CRF form (semen 1)",
            everyone,
            reverse("patients:crf-edit", args=[patient.uuid, scr.uuid, "semen_analysis", 1]),
        ),
        (
            "visit schedule",
            ("andrologist", "coordinator", "monitor", "admin"),
            reverse("followup:schedule"),
        ),
        ("reminders", ("coordinator", "monitor", "admin"), reverse("followup:reminder-list")),
        ("query list", everyone, reverse("monitoring:query-list")),
        ("audit trail, page 1", auditors, reverse("audit:trail")),
        ("consent audit", auditors, reverse("monitoring:consent-audit")),
        ("audit review, 30 days", auditors, reverse("monitoring:audit-review")),
        ("SDV worklist, page 1", auditors, reverse("monitoring:sdv-list")),
        ("results", ("andrologist", "monitor", "admin"), reverse("reports:results")),
        ("user access", ("admin",), reverse("monitoring:user-access")),
    ]
    return [(page, role, url) for page, roles, url in listing for role in roles]


def signed_in_clients(users: dict) -> dict:
    from django.test import Client

    from accounts.testing import mark_verified

    clients = {}
    for username, user in users.items():
        client = Client()
        client.force_login(user)
        mark_verified(client, user)  # two-factor sign-in: password and code
        clients[username] = client
    return clients


def measure(client, url: str, repeat: int) -> Timing:
    """The median of `repeat` requests after one warm-up request; a slow page fewer times
    (3 past SLOW_MS, the warm-up alone past 7 x SLOW_MS)."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    connection.queries_log = deque(maxlen=1_000_000)  # a page with an N+1 counted in full

    def one() -> tuple[float, int]:
        reset_queries()  # a full log (9,000 queries by default) would count nothing
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url)
            ms = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        return ms, len(queries)

    try:
        warm, count = one()
        runs = repeat if warm < SLOW_MS else 3 if warm < 7 * SLOW_MS else 0
        times = [warm] if not runs else []
        for _ in range(runs):
            ms, count = one()
            times.append(ms)
    except Exception as error:  # a page that fails at scale is reported, not fatal
        return Timing(error=f"{type(error).__name__}: {str(error)[:60]}")
    return Timing(queries=count, ms=statistics.median(times), runs=len(times))


def measure_all(rows: list[Row], clients: dict, listing, repeat: int, large: bool) -> None:
    for row, (page, username, url) in zip(rows, listing, strict=True):
        timing = measure(clients[username], url, repeat)
        if large:
            row.at_large = timing
        else:
            row.at_small = timing
        shown = timing.error or f"{timing.queries:3d} queries {timing.ms:9.1f} ms ({timing.runs})"
        print(f"  {page:<24} {username:<12} {shown}", flush=True)


# ---- 3. the clone -----------------------------------------------------------------------------


def patient_scoped_models() -> list:
    """Every model whose rows belong to a patient (a foreign key to Patient, or to such a
    model), each after the models it points to. Not the audit trail (cloned apart) nor PDF
    jobs (requests, not data)."""
    from django.apps import apps

    from audit.models import AuditEntry
    from patients.models import Patient

    skip = {AuditEntry, apps.get_model("exports", "PdfJob")}

    def targets(model) -> set:
        return {f.related_model for f in model._meta.concrete_fields if f.is_relation} - {model}

    scoped = {Patient}
    while True:
        more = {
            m
            for m in apps.get_models()
            if m not in scoped | skip and not m._meta.proxy and targets(m) & scoped
        }
        if not more:
            break
        scoped |= more
    ordered = []
    while len(ordered) < len(scoped):
        for model in sorted(scoped - set(ordered), key=lambda m: m._meta.db_table):
            if not (targets(model) & scoped) - set(ordered):
                ordered.append(model)
    return ordered


@dataclass
class ClonePlan:
    models: list
    stride: dict  # db_table -> the largest id of the originals (ids + k * stride)
    by_content_type: dict  # content_type_id -> db_table of a cloned model
    numbers: int  # the largest patient number of any site


def clone_plan() -> ClonePlan:
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from patients.models import Patient

    models = patient_scoped_models()
    stride = {}
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {model._meta.db_table}")
            stride[model._meta.db_table] = cursor.fetchone()[0]
    tables = {m._meta.db_table for m in models}
    by_content_type = {
        ct.id: ct.model_class()._meta.db_table
        for ct in ContentType.objects.all()
        if ct.model_class() is not None and ct.model_class()._meta.db_table in tables
    }
    numbers = max(Patient.objects.values_list("number", flat=True))
    return ClonePlan(models, stride, by_content_type, numbers)


def _shift(column: str, k: str = "k") -> str:
    """Timestamps moved back by 0-23 months per copy (30 days a month)."""
    return f"{column} - make_interval(days => 30 * ({k} % 24))"


def _remap_by(column: str, key: str, strides: dict, plan_stride: dict) -> str:
    """A generic reference (content type + object id, form code + record id) remapped."""
    cases = " ".join(
        f"WHEN {key} = {value!r} THEN {column} + k * {plan_stride[table]}"
        for value, table in strides.items()
    )
    return f"CASE {cases} ELSE {column} END" if cases else column


def clone_columns(model, plan: ClonePlan) -> list[tuple[str, str]]:
    """(column, expression over the original row `t` and the copy number `k`)."""
    table = model._meta.db_table
    out = []
    for f in model._meta.concrete_fields:
        column = f.column
        if f.primary_key:
            expr = f"t.{column} + k * {plan.stride[table]}"
        elif f.is_relation and f.related_model._meta.db_table in plan.stride:
            target = plan.stride[f.related_model._meta.db_table]
            expr = f"t.{column} + k * {target}"
        elif column == "uuid":
            expr = "gen_random_uuid()"
        elif column in ("created_at", "updated_at"):
            expr = _shift(f"t.{column}")
        else:
            expr = f"t.{column}"
        out.append((column, expr))
    overrides = {}
    if table == "patients_patient":
        number = f"(t.number + k * {plan.numbers})"
        overrides["number"] = number
        overrides["study_id"] = (
            f"split_part(t.study_id, '-', 1) || '-' || "
            f"CASE WHEN {number} < 1000 THEN lpad({number}::text, 3, '0') ELSE {number}::text END"
        )
    if table == "monitoring_dataquery":
        overrides["object_id"] = _remap_by(
            "t.object_id", "t.content_type_id", plan.by_content_type, plan.stride
        )
    if table == "monitoring_sdvformstatus":  # the stored SDV status: its form, its study id
        from core import crf

        forms = {d.code: d.model._meta.db_table for d in crf.all_definitions()}
        overrides["record_id"] = _remap_by("t.record_id", "t.form_code", forms, plan.stride)
        overrides["study_id"] = (
            "(SELECT p.study_id FROM patients_patient p "
            f"WHERE p.id = t.patient_id + k * {plan.stride['patients_patient']})"
        )
    return [(c, overrides.get(c, e)) for c, e in out]


# Rows holding a hash of the data they vouch for, which names its records' ids (visit,
# record): made again in Python with the application's own hash functions.
HASHED = ("monitoring_signature", "monitoring_sourceverification")


def _copy(instance, plan: ClonePlan, k: int, **changes):
    """An unsaved copy of `instance` for copy k: keys remapped, a new uuid."""
    values = {}
    for f in instance._meta.concrete_fields:
        value = getattr(instance, f.attname)
        if f.primary_key:
            value += k * plan.stride[instance._meta.db_table]
        elif f.is_relation and value is not None and f.related_model._meta.db_table in plan.stride:
            value += k * plan.stride[f.related_model._meta.db_table]
        elif f.name == "uuid":
            value = uuid.uuid4()
        values[f.attname] = value
    values.update(changes)
    return type(instance)(**values)


def clone_hashed(plan: ClonePlan, first: int, last: int) -> None:
    """Signatures and SDV marks of copies first..last, their hashes computed again over the
    copies' records (monitoring.selectors: what the pages and signature_check compute)."""
    from core import crf
    from monitoring.models import Signature, SourceVerification
    from monitoring.selectors import (
        canonical_hash,
        covered_logs,
        covered_records,
        covered_summary,
        record_values_hash,
    )
    from patients.models import Patient, Visit

    patients, visits = plan.stride["patients_patient"], plan.stride["patients_visit"]
    signatures = list(Signature.objects.filter(pk__lte=plan.stride["monitoring_signature"]))
    made = []
    for k in range(first, last + 1):
        for signature in signatures:
            patient = Patient.objects.get(pk=signature.patient_id + k * patients)
            visit = None
            if signature.visit_id is not None:
                visit = Visit.objects.get(pk=signature.visit_id + k * visits)
            records = covered_records(patient=patient, visit=visit)
            logs = covered_logs(patient=patient) if visit is None else []
            made.append(
                _copy(
                    signature,
                    plan,
                    k,
                    record_hash=canonical_hash(records, logs),
                    covered=covered_summary(records, logs),
                )
            )
    Signature.objects.bulk_create(made)
    marks = list(
        SourceVerification.objects.filter(pk__lte=plan.stride["monitoring_sourceverification"])
    )
    made = []
    for code in {mark.form_code for mark in marks}:
        model = crf.get(code).model
        stride = plan.stride[model._meta.db_table]
        of_form = [mark for mark in marks if mark.form_code == code]
        ids = [m.record_id + k * stride for m in of_form for k in range(first, last + 1)]
        records = model.objects.in_bulk(ids)
        for k in range(first, last + 1):
            for mark in of_form:
                record = records[mark.record_id + k * stride]
                made.append(
                    _copy(
                        mark,
                        plan,
                        k,
                        record_id=record.pk,
                        record_hash=record_values_hash(record),
                    )
                )
    SourceVerification.objects.bulk_create(made)


def _sdv_verified_hashes(cursor, plan: ClonePlan, first: int, last: int) -> None:
    """The stored SDV status of copies first..last holds their verifications' new hashes."""
    stride = plan.stride.get("monitoring_sdvformstatus")
    if stride is None:
        return
    cursor.execute(
        "UPDATE monitoring_sdvformstatus s SET verified_hash = v.record_hash "
        "FROM monitoring_sourceverification v WHERE v.id = s.verification_id "
        f"AND v.record_id = s.record_id AND s.id > {first * stride} "
        f"AND s.id <= {(last + 1) * stride}"
    )


def _audit_clone_sql(plan: ClonePlan, first: int, last: int) -> str:
    from audit.models import AuditEntry

    patients = plan.stride["patients_patient"]
    columns, exprs = [], []
    for f in AuditEntry._meta.concrete_fields:
        if f.primary_key:
            continue  # numbered by the sequence, in the order inserted
        columns.append(f.column)
        if f.column == "patient_id":
            exprs.append(f"t.patient_id + k * {patients}")
        elif f.column == "object_id":
            exprs.append(
                _remap_by("t.object_id", "t.content_type_id", plan.by_content_type, plan.stride)
            )
        elif f.column == "timestamp":
            exprs.append(_shift('t."timestamp"'))
        else:
            exprs.append(f't."{f.column}"')  # chain columns: set again by the chain trigger
    quoted = ", ".join(f'"{c}"' for c in columns)
    return (
        f"INSERT INTO audit_auditentry ({quoted}) "
        f"SELECT {', '.join(exprs)} FROM audit_auditentry t "
        f"CROSS JOIN generate_series({first}, {last}) AS k "
        f"WHERE t.patient_id IS NOT NULL AND t.patient_id <= {patients} "
        "ORDER BY k, t.patient_id, t.chain_seq"
    )


def clone(target: int, batch: int) -> None:
    """Copies of the cohort until there are at least `target` patients."""
    from django.db import connection, transaction

    from patients.models import Patient

    plan = clone_plan()
    # How many there are, not the highest id (the stride): ids have gaps where a sequence
    # moved on without a row (a rolled-back test, a deleted draft).
    originals = Patient.objects.count()
    copies = max(0, -(-target // originals) - 1)
    print(
        f"Cloning {originals} patients x {copies} copies in SQL ({len(plan.models)} tables + "
        f"the audit trail, triggers on, {batch} copies per statement)",
        flush=True,
    )
    started = time.perf_counter()
    audit_seconds = 0.0
    for first in range(1, copies + 1, batch):
        last = min(copies, first + batch - 1)
        with transaction.atomic(), connection.cursor() as cursor:
            # As the services do: this writer records the trail itself (the capture trigger
            # then has nothing to add); the trigger still runs on every row.
            cursor.execute("SELECT set_config('edc.audit_context', 'app', true)")
            for model in plan.models:
                if model._meta.db_table in HASHED:
                    continue
                table = model._meta.db_table
                columns = clone_columns(model, plan)
                cursor.execute(
                    f"INSERT INTO {table} ({', '.join(c for c, _ in columns)}) "
                    f"SELECT {', '.join(e for _, e in columns)} FROM {table} t "
                    f"CROSS JOIN generate_series({first}, {last}) AS k "
                    f"WHERE t.id <= {plan.stride[table]} ORDER BY k, t.id"
                )
            clone_hashed(plan, first, last)
            _sdv_verified_hashes(cursor, plan, first, last)
            audit_started = time.perf_counter()
            cursor.execute(_audit_clone_sql(plan, first, last))
            audit_seconds += time.perf_counter() - audit_started
        done = time.perf_counter() - started
        print(f"  copies {first}-{last}: {done:.0f} s", flush=True)
    with connection.cursor() as cursor:
        for model in plan.models:
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT MAX(id) FROM {table}))"
            )
        cursor.execute("ANALYZE")
    seconds = time.perf_counter() - started
    print(
        f"Clone: {seconds:.0f} s ({audit_seconds:.0f} s of it the audit trail through the chain "
        "trigger)"
    )
    print_counts(plan.models)


def print_counts(models) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        counts = []
        for table in [m._meta.db_table for m in models] + ["audit_auditentry", "audit_chainhead"]:
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            counts.append(f"{table} {cursor.fetchone()[0]:,}")
    print("Rows: " + "; ".join(counts))


def extras(coordinator=None) -> None:
    """bench/pdf_and_export.py's casebook PDF and export vs COPY, by its coordinator of every
    site (seed_demo's coordinator sees one site: its export would hold half of COPY's rows)."""
    coordinator = coordinator or make_users()[1]
    print()
    bench_pdf(coordinator, 3)
    print()
    bench_export(coordinator, 1)


def verify() -> None:
    """The clone as the application's own checks see it: every hash chain intact (the chain
    trigger linked the cloned rows) and every e-signature verifying against its data."""
    from audit.chain import verify_audit_trail
    from monitoring.integrity import signature_check

    print("\nAudit trail: " + verify_audit_trail().summary())
    check = signature_check()
    print(f"Signatures: {'PASS' if check.passed else 'FAIL'}: {check.summary}")
    for problem in check.problems[:5]:
        print(f"  {problem}")


# ---- 4. the table -----------------------------------------------------------------------------


def verdict(row: Row) -> str:
    small, large = row.at_small, row.at_large
    if small.error or large.error:
        return "ERROR"
    ratio = large.ms / small.ms
    misses = []
    if large.ms > GOAL_MS:
        misses.append("ms")
    if large.queries > GOAL_QUERIES:
        misses.append("queries")
    if ratio > GOAL_RATIO:
        misses.append("ratio")
    return "met" if not misses else "NOT met: " + ", ".join(misses)


def print_table(rows: list[Row], small: int, large: int) -> None:
    def cell(t: Timing) -> tuple[str, str]:
        if t.error:
            return "-", t.error[:30]
        return f"{t.queries}", f"{t.ms:,.1f}"

    print(
        f"\n| page | role | queries@{small} | ms@{small} | queries@{large:,} | ms@{large:,} "
        f"| ratio | goals (<= {GOAL_MS} ms, <= {GOAL_QUERIES} queries, ratio <= {GOAL_RATIO}) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    met = 0
    for row in rows:
        q1, ms1 = cell(row.at_small)
        q2, ms2 = cell(row.at_large)
        ok = not (row.at_small.error or row.at_large.error)
        ratio = f"{row.at_large.ms / row.at_small.ms:.2f}" if ok else "-"
        status = verdict(row)
        met += status == "met"
        print(f"| {row.page} | {row.role} | {q1} | {ms1} | {q2} | {ms2} | {ratio} | {status} |")
    print(f"\nGoals met on {met} of {len(rows)} page x role rows.")


def _setup(url: str) -> None:
    """Django on the bench's database (no Redis: the test settings' caches)."""
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    import django

    django.setup()


def _high_water_mb() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss after fork + exec keeps the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def export_rss(url: str) -> None:
    """In a process of its own (the bench's own peak is the seed's and the pages'): the full
    streamed export by a coordinator of both sites, then this process's peak RSS."""
    _setup(url)
    from django.contrib.auth import get_user_model
    from pdf_and_export import export_ours_streamed

    before = _high_water_mb()
    size = export_ours_streamed(get_user_model().objects.get(username="bench_coord"))
    peak = _high_water_mb()
    print(
        f"  peak RSS of a process streaming the full export: {peak:.0f} MB "
        f"({before:.0f} MB after start-up; {size / 1024 / 1024:.0f} MB of CSV)"
    )


def bench_site_zip_and_saves(url: str) -> None:
    """A 44-patient site's casebooks with 2 processes (bench/site_zip.py, on this database), and
    50 concurrent CRF saves through gunicorn (bench/concurrent_save.py, on a small database of
    its own: the save's cost, not the study's size)."""
    here = Path(__file__).parent
    env = {**os.environ, "BENCH_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, str(here / "site_zip.py"), "--patients", "44", "--workers", "2"],
        env=env,
        check=False,
    )
    subprocess.run(
        [sys.executable, str(here / "concurrent_save.py")],
        env={**os.environ, "BENCH_DATABASE_URL": url + "_save"},
        check=False,
    )


def extras_only(url: str) -> None:
    _setup(url)
    from django.contrib.auth import get_user_model

    from patients.models import Patient

    print(f"{Patient.objects.count():,} patients in {urlsplit(url).path.lstrip('/')}")
    # A run with the extras made the bench's coordinator of both sites already.
    extras(get_user_model().objects.filter(username="bench_coord").first())
    sys.stdout.flush()
    subprocess.run([sys.executable, __file__, "--export-rss", url], check=False)
    bench_site_zip_and_saves(url)


def main():
    if sys.argv[1:2] == ["--export-rss"]:
        return export_rss(sys.argv[2])
    args = parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if args.extras_only:
        return extras_only(url)
    recreate_database(url)
    _setup(url)
    from django.core.management import call_command
    from django.db import connections
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from patients.models import Patient

    setup_test_environment()
    logging.getLogger("axes").setLevel(logging.WARNING)  # a line per sign-in otherwise
    try:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        users = seed(timezone.localdate())
        made = seed_monitoring_and_logs(users)
        small = Patient.objects.count()
        print(
            f"{small} patients through the services in {time.perf_counter() - started:.0f} s "
            f"(database {urlsplit(url).path.lstrip('/')}); "
            + ", ".join(f"{v} {k}" for k, v in made.items())
        )
        clients = signed_in_clients(users)
        listing = pages(users)
        rows = [Row(page, username) for page, username, _ in listing]
        print(f"\nPages at {small} patients (queries, median ms, timed requests):")
        warm_results(clients)  # the results page reads its stored job (cold time printed)
        measure_all(rows, clients, listing, args.repeat, large=False)
        clone(args.patients, args.batch)
        large = Patient.objects.count()
        print(f"\nPages at {large:,} patients:")
        warm_results(clients)
        measure_all(rows, clients, listing, args.repeat, large=True)
        print_table(rows, small, large)
        if args.verify:
            verify()
        if not args.no_extras:
            extras()
            sys.stdout.flush()
            subprocess.run([sys.executable, __file__, "--export-rss", url], check=False)
            bench_site_zip_and_saves(url)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"Peak RSS of the bench itself (seed, pages, clone, PDF, export): {peak:.0f} MB")
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
