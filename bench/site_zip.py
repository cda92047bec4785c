"""Benchmark: a site's casebook ZIP (issue 12 goal: 44 patients <= 30 s with 2 workers).

On a database kept by an earlier run (`bench/scale.py --keep`, or pdf_and_export.py --keep),
it builds the casebooks of the first --patients patients of the first site the way the PDF
job does (exports.services: patient_data_batches, crf_document, WeasyPrint, one ZIP member per
patient), and times:

1. serially, in this process (what one worker does today);
2. split in --workers halves rendered by that many processes at once (fork), the parent
   writing the ZIP in the serial order. This is the ceiling of a chunked build over worker
   processes on this machine, measured with plain processes, not through Celery.

It checks that both ZIPs hold the same members in the same order with the same text.

    BENCH_DATABASE_URL=postgres://edc@127.0.0.1:5432/edc_bench_me \\
        .venv/bin/python bench/site_zip.py --patients 44 --workers 2
"""

import argparse
import io
import multiprocessing
import os
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=44)
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args()


def setup():
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    import django

    django.setup()


def patient_ids(count: int) -> list[int]:
    from patients.models import Patient
    from trial.models import StudySite

    site = StudySite.objects.order_by("code").first()
    rows = Patient.objects.filter(site=site).order_by("site__code", "number")
    return list(rows.values_list("pk", flat=True)[:count])


def render(ids: list[int], now) -> list[tuple[str, bytes]]:
    """(member name, PDF) per patient, as exports.services._build_zip makes them."""
    from django.contrib.auth import get_user_model

    from core import crf
    from exports.metadata import crf_layout
    from exports.pdf import crf_document, crf_document_pdf
    from exports.selectors import crf_content_types, patient_data_batches
    from patients.models import Patient

    user = get_user_model().objects.get(username="bench_coord")
    layouts = {d.code: crf_layout(d.code) for d in crf.all_definitions()}
    model_codes = crf_content_types()
    out = []
    for data in patient_data_batches(patients=Patient.objects.filter(pk__in=ids), viewer=user):
        document = crf_document(
            data=data,
            layouts=layouts,
            model_codes=model_codes,
            title="Casebook",
            generated_by=user,
            generated_at=now,
        )
        out.append((f"{data.patient.study_id}_casebook.pdf", crf_document_pdf(document)))
    return out


def _child(ids, now, queue):
    from django.db import connections

    connections.close_all()  # a forked process opens its own connection
    queue.put(render(ids, now))


def write_zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def main():
    args = parse_args()
    setup()
    from django.db import connections
    from django.utils import timezone

    now = timezone.now()  # the job's start: every casebook says it was generated then
    ids = patient_ids(args.patients)
    render(ids[:1], now)  # imports, fonts, templates out of the measurement
    start = time.perf_counter()
    serial = write_zip(render(ids, now))
    serial_s = time.perf_counter() - start

    connections.close_all()
    start = time.perf_counter()
    size = -(-len(ids) // args.workers)
    parts = [ids[i : i + size] for i in range(0, len(ids), size)]
    queues = [multiprocessing.Queue() for _ in parts]
    processes = [
        multiprocessing.Process(target=_child, args=(part, now, queue))
        for part, queue in zip(parts, queues, strict=True)
    ]
    for process in processes:
        process.start()
    members = [member for queue in queues for member in queue.get()]
    for process in processes:
        process.join()
    parallel = write_zip(members)
    parallel_s = time.perf_counter() - start

    with zipfile.ZipFile(io.BytesIO(serial)) as a, zipfile.ZipFile(io.BytesIO(parallel)) as b:
        same = a.namelist() == b.namelist() and all(a.read(n) == b.read(n) for n in a.namelist())
    print(f"Site ZIP of {len(ids)} casebooks ({len(serial) // 1024} kB)")
    print(f"  serial, one process:                 {serial_s:7.1f} s")
    print(f"  {args.workers} processes, chunks in parallel:   {parallel_s:7.1f} s")
    print(f"  same members, order and bytes:       {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
