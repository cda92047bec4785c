"""Benchmark: what our PDF and export code costs on top of the tools underneath.

1. One casebook PDF built the way the job builds it (load the patient, arrange the CRFs,
   render the template, WeasyPrint) against WeasyPrint rendering the very same HTML directly.
2. A full export (every per-form CSV, streamed by our generators) against PostgreSQL `COPY`
   of the same rows and columns (decode columns included, as SQL CASE expressions).
It prints both ratios, checks that the two exports hold the same rows, and prints the peak
Python memory of the export with half of the patients and with all of them (streaming: once
a fetch chunk of EXPORT_CHUNK_SIZE rows is full, it does not grow with the study).

Run it from the repository root on a machine with PostgreSQL (it makes its own throwaway
database, drops it at the end, and never touches another one):

    .venv/bin/python bench/pdf_and_export.py                # 400 patients, ~2 minutes
    .venv/bin/python bench/pdf_and_export.py --patients 100 --keep
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc_bench_me \\
        .venv/bin/python bench/pdf_and_export.py

The synthetic patients are entered through the real services (consent, crf_save, audit
trail), so setting them up takes longer than the measurements themselves.
"""

import argparse
import csv
import io
import os
import statistics
import sys
import time
import tracemalloc
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/edc_bench_h7"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (median kept)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


def recreate_database(url: str) -> None:
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("edc_bench"):
        raise SystemExit(
            f"Refusing to drop {name!r}: the bench database name must start with edc_bench"
        )
    admin = psycopg2.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def start_bench_study(url: str) -> None:
    """A fresh database at `url`, Django set up on it (the test settings, no Redis), migrated,
    with the protocol loaded: the start of every bench that makes its own study."""
    recreate_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from trial.services import protocol_load

    call_command("migrate", verbosity=0)
    protocol_load(path=settings.PROTOCOL_FILE)


def drop_database(url: str) -> None:
    import psycopg2

    parts = urlsplit(url)
    admin = psycopg2.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}"')
    admin.close()


def median_seconds(function, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


# ---- synthetic study -------------------------------------------------------------------------


def make_users():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core.roles import Role
    from trial.models import StudySite
    from trial.services import site_membership_add

    def user(username, role):
        person = get_user_model().objects.create_user(username=username, password="bench-pass-123")
        person.groups.add(Group.objects.get_or_create(name=role)[0])
        for site in StudySite.objects.all():
            site_membership_add(user=person, site=site)
        return person

    return user("bench_andro", Role.ANDROLOGIST), user("bench_coord", Role.COORDINATOR)


def add_patients(count: int, andrologist, start: int) -> None:
    """Patients with a full screening (10 forms), one correction, and month 4 and 6 visits."""
    from django.utils import timezone

    from patients import services
    from patients.models import Visit
    from trial.models import StudySite, VisitDefinition
    from trial.selectors import current_consent_version

    sys.path.insert(0, str(ROOT / "tests"))
    from factories import crf_values  # noqa: E402 - the tests' valid CRF values

    sites = list(StudySite.objects.order_by("code"))
    today = timezone.localdate()
    for n in range(start, start + count):
        site = sites[n % len(sites)]
        patient = services.patient_enrol(
            site=site,
            user=andrologist,
            full_name=f"Synthetic Person {n}",
            date_of_birth=today - timedelta(days=365 * (25 + n % 30)),
            enrolment_date=today - timedelta(days=400),
        )
        services.consent_record(
            patient=patient,
            user=andrologist,
            obtained_by=andrologist,
            consent_version=current_consent_version(protocol=site.protocol),
            signed_at=timezone.make_aware(
                datetime.combine(today - timedelta(days=400), datetime.min.time())
            ),
        )
        screening = patient.visits.get(definition__code="SCR")

        def save(code, visit, sequence=1, **changes):
            from core import crf

            values = crf_values(code, **changes)  # dates resolved to today
            record = crf.get(code).model(visit=visit, sequence=sequence, **values)
            return services.crf_save(record=record, user=andrologist)

        for code in ("eligibility", "medical_history", "examination", "karyotype", "azf", "biopsy"):
            save(code, screening)
        for sequence in (1, 2, 3):
            save("semen_analysis", screening, sequence, abstinence_days=2 + (n + sequence) % 8)
        hormones = save("hormones", screening, fsh=Decimal("10") + n % 40)
        hormones.lh = Decimal("7.5")
        services.crf_save(record=hormones, user=andrologist, reason="Lab report re-read")
        for code in ("M4", "M6"):
            visit = Visit.objects.create(
                patient=patient,
                definition=VisitDefinition.objects.get(protocol=site.protocol, code=code),
            )
            save("semen_analysis", visit, sperm_seen="PELLET" if n % 5 == 0 else "NONE")
            save("hormones", visit, fsh=Decimal("9") + n % 30)


# ---- 1. casebook PDF -------------------------------------------------------------------------


def bench_pdf(coordinator, repeat: int) -> None:
    import weasyprint
    from django.template.loader import render_to_string
    from django.utils import timezone
    from weasyprint.text.fonts import FontConfiguration

    from core import crf
    from core.pdf import PDF_BASE_URL, static_url_fetcher
    from exports.metadata import crf_layout
    from exports.pdf import crf_document, crf_document_pdf
    from exports.selectors import crf_content_types, patient_data
    from patients.models import Patient

    patient = Patient.objects.order_by("pk").first()
    now = timezone.now()

    def document():
        return crf_document(
            data=patient_data(patient=patient),
            layouts={d.code: crf_layout(d.code) for d in crf.all_definitions()},
            model_codes=crf_content_types(),
            title="Casebook",
            generated_by=coordinator,
            generated_at=now,
        )

    def ours():
        return crf_document_pdf(document())

    html = render_to_string("pdf/crf_document.html", {"doc": document()})

    def direct():
        return weasyprint.HTML(
            string=html, base_url=PDF_BASE_URL, url_fetcher=static_url_fetcher
        ).write_pdf(font_config=FontConfiguration())

    ours(), direct()  # warm caches (fonts, templates)
    ours_s = median_seconds(ours, repeat)
    direct_s = median_seconds(direct, repeat)
    pages = len(
        weasyprint.HTML(string=html, base_url=PDF_BASE_URL, url_fetcher=static_url_fetcher)
        .render(font_config=FontConfiguration())
        .pages
    )
    print(f"Casebook PDF of {patient.study_id} ({len(html) // 1024} kB of HTML, {pages} pages)")
    print(f"  ours (load + arrange + template + WeasyPrint): {ours_s * 1000:8.1f} ms")
    print(f"  WeasyPrint on the same HTML:                  {direct_s * 1000:8.1f} ms")
    print(f"  ratio ours / WeasyPrint:                      {ours_s / direct_s:8.2f}")


# ---- 2. full export --------------------------------------------------------------------------


def copy_sql(code: str) -> str:
    """The per-form CSV of exports.datasets, as one SELECT for COPY."""
    from core import crf
    from exports.datasets import _form_items
    from exports.metadata import crf_layout

    definition = crf.get(code)
    table = definition.model._meta.db_table
    columns = [
        "p.study_id",
        "s.code",
        "d.code",
        "v.sequence",
        "f.sequence",
        "to_char(f.assessment_date, 'YYYY-MM-DD')",
    ]
    for item in _form_items(crf_layout(code)):
        column = definition.model._meta.get_field(item.name).column
        columns.append(f"f.{column}")
        if item.is_coded:
            cases = " ".join(
                f"WHEN f.{column} = '{c}' THEN '{label.replace(chr(39), chr(39) * 2)}'"
                for c, label in item.choices
            )
            columns.append(f"CASE {cases} ELSE '' END")
    return (
        f"SELECT {', '.join(columns)} FROM {table} f "
        "JOIN patients_visit v ON v.id = f.visit_id "
        "JOIN patients_patient p ON p.id = v.patient_id "
        "JOIN trial_studysite s ON s.id = p.site_id "
        "JOIN trial_visitdefinition d ON d.id = v.definition_id "
        "WHERE f.voided_at IS NULL "
        'ORDER BY s.code, p.number, d."order", v.sequence, f.sequence'
    )


class Sink:
    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += len(data)


def export_ours(coordinator) -> dict[str, str]:
    from core import crf
    from exports.datasets import form_csv

    return {d.code: "".join(form_csv(user=coordinator, code=d.code)) for d in crf.all_definitions()}


def export_ours_streamed(coordinator) -> int:
    from core import crf
    from exports.datasets import form_csv

    size = 0
    for d in crf.all_definitions():
        for chunk in form_csv(user=coordinator, code=d.code):
            size += len(chunk)
    return size


def export_copy() -> dict[str, str]:
    from django.db import connection

    from core import crf

    out = {}
    with connection.cursor() as cursor:
        for d in crf.all_definitions():
            buffer = io.StringIO()
            cursor.cursor.copy_expert(f"COPY ({copy_sql(d.code)}) TO STDOUT WITH CSV", buffer)
            out[d.code] = buffer.getvalue()
    return out


def export_copy_streamed() -> int:
    from django.db import connection

    from core import crf

    sink = Sink()
    with connection.cursor() as cursor:
        for d in crf.all_definitions():
            cursor.cursor.copy_expert(f"COPY ({copy_sql(d.code)}) TO STDOUT WITH CSV", sink)
    return sink.size


def same_rows(ours: dict[str, str], copied: dict[str, str]) -> bool:
    for code, text in ours.items():
        mine = list(csv.reader(io.StringIO(text)))[1:]  # without the header
        theirs = list(csv.reader(io.StringIO(copied[code])))
        if mine != theirs:
            return False
    return True


def peak_memory_mb(function) -> float:
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1024 / 1024


def bench_export(coordinator, repeat: int) -> None:
    from exports.models import PdfJob  # noqa: F401 - the app is loaded
    from patients.models import Patient

    ours_s = median_seconds(lambda: export_ours_streamed(coordinator), repeat)
    copy_s = median_seconds(export_copy_streamed, repeat)
    identical = same_rows(export_ours(coordinator), export_copy())
    rows = sum(text.count("\n") - 1 for text in export_ours(coordinator).values())
    print(f"Full export: every per-form CSV, {Patient.objects.count()} patients, {rows} form rows")
    print(f"  ours (streamed CSV generators):               {ours_s * 1000:8.1f} ms")
    print(f"  PostgreSQL COPY of the same rows:             {copy_s * 1000:8.1f} ms")
    print(f"  ratio ours / COPY:                            {ours_s / copy_s:8.2f}")
    print(f"  same rows and values in both:                 {'yes' if identical else 'NO'}")


def bench_other_exports(coordinator) -> None:
    from django.utils import timezone

    from exports.datasets import analysis_rows, csv_lines
    from exports.odm import odm_chunks
    from trial.selectors import active_protocol

    protocol = active_protocol()
    start = time.perf_counter()
    size = sum(len(c) for c in odm_chunks(user=coordinator, protocol=protocol, now=timezone.now()))
    odm_s = time.perf_counter() - start
    start = time.perf_counter()
    rows = sum(1 for _ in csv_lines(analysis_rows(user=coordinator, protocol=protocol)))
    analysis_s = time.perf_counter() - start
    print(
        f"  ODM 1.3.2 with audit records: {size // 1024} kB in {odm_s * 1000:.0f} ms;"
        f" analysis.csv: {rows} lines in {analysis_s * 1000:.0f} ms"
    )
    # Everything at once, zipped with its manifest (what the "All datasets" button sends).
    import tempfile

    from exports.bundle import write_bundle

    with tempfile.TemporaryFile() as target:
        start = time.perf_counter()
        lines = write_bundle(target, user=coordinator, protocol=protocol, now=timezone.now())
        bundle_s = time.perf_counter() - start
        zipped = target.tell()
    raw = sum(line.size for line in lines)
    print(
        f"  All datasets ZIP: {len(lines)} files, {raw // 1024} kB -> {zipped // 1024} kB"
        f" in {bundle_s * 1000:.0f} ms"
    )


def main():
    args = parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    try:
        start_bench_study(url)
    except BaseException:
        drop_database(url)
        raise
    from django.db import connections

    try:
        andrologist, coordinator = make_users()
        half = max(1, args.patients // 2)
        start = time.perf_counter()
        add_patients(half, andrologist, start=0)
        export_ours_streamed(coordinator)  # imports and caches out of the measurement
        small_peak = peak_memory_mb(lambda: export_ours_streamed(coordinator))
        add_patients(args.patients - half, andrologist, start=half)
        print(
            f"{args.patients} synthetic patients entered through the services in "
            f"{time.perf_counter() - start:.0f} s (database {urlsplit(url).path.lstrip('/')})\n"
        )
        bench_pdf(coordinator, args.repeat)
        print()
        bench_export(coordinator, args.repeat)
        bench_other_exports(coordinator)
        full_peak = peak_memory_mb(lambda: export_ours_streamed(coordinator))
        print(
            f"  peak Python memory of the streamed export:    {small_peak:6.1f} MB with "
            f"{half} patients, {full_peak:6.1f} MB with {args.patients}"
        )
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
