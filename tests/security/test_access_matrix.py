"""The access matrix (issue 11): every URL of the resolver x every role x own site / other
site / anonymous x GET and POST, against the one table in tests/security/access_table.py.
All the holes are collected and shown together, one line each."""

import time

from .access_table import TABLE
from .matrix import Recorder, quiet, run_admin_matrix, run_app_matrix
from .urls import is_admin, url_patterns
from .world import ROLES


def _report(title, failures):
    return f"{title}: {len(failures)}\n" + "\n".join(case.row() for case in failures)


def test_every_url_is_in_the_access_table():
    names = {p.name for p in url_patterns() if not is_admin(p)}
    missing = sorted(names - TABLE.keys())
    assert not missing, (
        "URLs with no line in tests/security/access_table.py (say who may GET and POST "
        f"them there): {missing}"
    )
    stale = sorted(TABLE.keys() - names)
    assert not stale, f"Lines of the access table with no URL any more: {stale}"


def test_every_url_answers_every_role_as_the_access_table_says(world, record_property):
    started, cpu = time.monotonic(), time.process_time()
    patterns = url_patterns()
    app = [p for p in patterns if not is_admin(p) and p.name in TABLE]
    recorder = Recorder()
    try:
        with quiet():
            cases, failures = run_app_matrix(app, TABLE, world, ROLES, recorder)
            admin_cases, admin_failures = run_admin_matrix(
                [p for p in patterns if is_admin(p)], world, ROLES, recorder
            )
    finally:
        recorder.close()
    seconds = time.monotonic() - started
    summary = (
        f"access matrix: {len(app)} URLs, {len(cases)} combinations (roles x own/other site/"
        f"anonymous x GET/POST), {len(failures)} failing; Django admin: "
        f"{len({c.url_name for c in admin_cases})} URLs, {len(admin_cases)} combinations, "
        f"{len(admin_failures)} failing; {seconds:.1f} s wall, "
        f"{time.process_time() - cpu:.1f} s CPU in this process"
    )
    print(summary)
    record_property("access_matrix", summary)
    assert not failures and not admin_failures, (
        summary
        + "\n"
        + _report("app URLs", failures)
        + "\n"
        + _report("admin URLs", admin_failures)
    )
