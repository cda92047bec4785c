"""Benchmark: what the audit trail's hash chain (audit/chain.py, audit migration 0006) costs.

1. One audited CRF save (a correction of FSH with a reason, through patients.services.crf_save,
   in its own transaction) with the chain trigger on and off.
2. Two threads saving at once, each in its own transactions: on two different patients
   (different chains: nothing shared) and on two records of the same patient (one chain: the
   second writer waits for the first's commit on the chain's head).
3. Rows inserted in one statement (as bulk_create and the capture trigger do), and the
   verifier's speed (rows/second) on a trail of --rows rows.

Run it from the repository root on a machine with PostgreSQL (it makes its own throwaway
database, drops it at the end, and never touches another one):

    .venv/bin/python bench/audit_chain.py                 # ~1 minute
    .venv/bin/python bench/audit_chain.py --saves 400 --rows 500000
"""

import argparse
import os
import statistics
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pdf_and_export import add_patients, drop_database, make_users, start_bench_study  # noqa: E402

DEFAULT_URL = "postgres://edc@127.0.0.1:5432/edc_bench_chain"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=200, help="saves per timing")
    parser.add_argument("--rows", type=int, default=200_000, help="trail size to verify")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


def chain_trigger(on: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        state = "ENABLE" if on else "DISABLE"
        cursor.execute(f"ALTER TABLE audit_auditentry {state} TRIGGER edc_audit_chain")


def correction(record_id: int, model, user, n: int) -> float:
    """One audited save in its own transaction (as a request is); seconds."""
    from django.db import transaction

    from patients import services

    start = time.perf_counter()
    with transaction.atomic():
        record = model.objects.get(pk=record_id)
        record.fsh = Decimal("10") + Decimal(n % 400) / 10
        services.crf_save(record=record, user=user, reason=f"Lab report re-read ({n})")
    return time.perf_counter() - start


def bench_single(records, model, user, saves: int) -> None:
    print("1. One audited CRF save (FSH corrected with a reason, its own transaction)")
    timings = {True: [], False: []}
    # Alternate blocks of 20, so drift in the machine's load hits both alike.
    for block in range(0, saves, 20):
        for on in (False, True):
            chain_trigger(on)
            for n in range(block, min(block + 20, saves)):
                timings[on].append(correction(records[0], model, user, n))
    chain_trigger(True)
    off, on = statistics.median(timings[False]), statistics.median(timings[True])
    print(f"   without the chain: median {off * 1000:6.2f} ms over {len(timings[False])} saves")
    print(f"   with the chain:    median {on * 1000:6.2f} ms over {len(timings[True])} saves")
    print(f"   cost: {(on - off) * 1000:+.2f} ms per save ({(on / off - 1) * 100:+.1f}%)\n")


def two_writers(first, second, model, user, saves: int) -> float:
    """Two threads, `saves` saves each; wall-clock seconds."""
    from django.db import connection

    start_line = threading.Barrier(2)

    def run(record_id, offset):
        try:
            start_line.wait()
            for n in range(saves):
                correction(record_id, model, user, offset + n)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(first, 0)),
        threading.Thread(target=run, args=(second, 1000)),
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def bench_concurrent(records, model, user, saves: int) -> None:
    print(f"2. Two threads saving at once, {saves} saves each")
    for label, pair in (
        ("different patients", (records[0], records[2])),
        ("the same patient  ", (records[0], records[1])),
    ):
        figures = []
        for on in (False, True):
            chain_trigger(on)
            seconds = two_writers(*pair, model, user, saves)
            figures.append(
                f"{'with' if on else 'without'} chain {2 * saves / seconds:6.1f} saves/s"
            )
        print(f"   {label}: " + ", ".join(figures))
    chain_trigger(True)
    print()


def bench_bulk_and_verify(rows: int) -> None:
    from django.db import connection, transaction

    from audit.chain import verify_audit_trail

    print(f"3. {rows} audit rows inserted in statements of 10 000 rows, then verified")
    timings = {}
    for on in (False, True):
        chain_trigger(on)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT content_type_id, object_id, patient_id FROM audit_auditentry "
                "WHERE patient_id IS NOT NULL ORDER BY id LIMIT 1"
            )
            content_type, object_id, patient = cursor.fetchone()
        count = rows if on else min(rows, 50_000)
        start = time.perf_counter()
        for offset in range(0, count, 10_000):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO audit_auditentry (timestamp, user_name, action, "
                    "content_type_id, object_id, object_repr, patient_id, form_code, "
                    "field_name, old_value, new_value, reason) "
                    "SELECT now(), 'bench', 'update', %s, %s, 'bench', "
                    "CASE WHEN g %% 10 = 0 THEN NULL ELSE %s END, 'hormones', 'fsh', "
                    "g::text, (g + 1)::text, 'Bench' FROM generate_series(%s, %s) g",
                    [content_type, object_id, patient, offset, min(offset + 10_000, count) - 1],
                )
        timings[on] = (time.perf_counter() - start) / count
        if not on:
            with connection.cursor() as cursor:  # the unchained rows out again, owner only
                cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER USER")
                cursor.execute("DELETE FROM audit_auditentry WHERE chain_seq IS NULL")
                cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER USER")
    print(
        f"   insert: {timings[False] * 1e6:6.1f} µs/row without the chain, "
        f"{timings[True] * 1e6:6.1f} µs/row with it"
    )
    report = verify_audit_trail()
    print(f"   verify_audit_trail: {report.summary()}")
    assert report.intact, report.broken[:3]


def main():
    args = parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    try:
        start_bench_study(url)
    except BaseException:
        drop_database(url)
        raise
    from django.db import connections

    from labs.models import HormoneProfile

    try:
        andrologist, _ = make_users()
        add_patients(2, andrologist, start=0)
        hormones = list(
            HormoneProfile.objects.order_by(
                "visit__patient_id", "visit__definition__order"
            ).values_list("pk", "visit__patient_id")
        )
        # Two records of the first patient (screening, month 4), one of the second.
        first = [pk for pk, patient in hormones if patient == hormones[0][1]]
        other = [pk for pk, patient in hormones if patient != hormones[0][1]]
        records = [first[0], first[1], other[0]]
        correction(records[0], HormoneProfile, andrologist, 0)  # warm caches
        bench_single(records, HormoneProfile, andrologist, args.saves)
        bench_concurrent(records, HormoneProfile, andrologist, args.saves // 2)
        bench_bulk_and_verify(args.rows)
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
