"""No page reads more when the study grows (issue 12): every URL a role may GET, for every
role, on the world (one patient with every kind of record at each site), then again after
more such patients were added. The same number of SQL statements both times, or the page has
an N+1 (a query per patient, per form, per row) that 10,000 patients would pay for.

The ceiling per page is the issue's goal for every page at any size."""

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from .access_table import TABLE
from .matrix import client_for, quiet
from .urls import fill, is_admin, url_patterns
from .world import ROLES, add_patients

# Every page, whatever the study's size (tightened as pages get cheaper: issue 12's goal is 12).
CEILING = 40
# Downloads that read every dataset of the study (one query per table, not per row).
DOWNLOAD_CEILING = {"exports:bundle-zip": 85}


def _count(client, url: str) -> tuple[int, int]:
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)  # a streamed body runs its queries now
        transaction.set_rollback(True)
    return response.status_code, len(queries)


def _page_counts(world) -> dict[tuple[str, str], tuple[int, int]]:
    counts = {}
    for pattern in url_patterns():
        if is_admin(pattern) or pattern.name not in TABLE:
            continue
        access = TABLE[pattern.name]
        if access.get is None or access.public or access.ends_session:
            continue
        for role in ROLES:
            if role not in access.get:
                continue
            user = world.user(role)
            url = reverse(pattern.name, kwargs=fill(pattern, world, "own", user))
            counts[(pattern.name, role)] = _count(client_for(user), url)
    return counts


def test_no_page_reads_more_when_the_study_grows(world, record_property):
    with quiet():
        small = _page_counts(world)
        add_patients(world, per_site=2)
        large = _page_counts(world)
    assert len(small) > 60, "the walk must reach every page"
    grew = [
        f"{name:38} {role:15} {small[key][1]:3d} -> {large[key][1]:3d} statements"
        for key in small
        for name, role in [key]
        if large[key][1] > small[key][1]
    ]
    over = [
        f"{name:38} {role:15} {large[key][1]:3d} statements"
        for key in large
        for name, role in [key]
        if large[key][1] > DOWNLOAD_CEILING.get(name, CEILING)
    ]
    failed = [f"{k[0]} {k[1]}: HTTP {v[0]}" for k, v in large.items() if v[0] >= 400]
    worst = sorted(large.items(), key=lambda item: -item[1][1])[:5]
    summary = f"{len(large)} pages x roles; most statements: " + ", ".join(
        f"{k[0]} ({k[1]}) {v[1]}" for k, v in worst
    )
    print(summary)
    for (name, role), (_status, n) in sorted(large.items(), key=lambda item: -item[1][1]):
        print(f"  {n:3d} {name} ({role})")
    record_property("query_growth", summary)
    assert not failed, "pages that failed:\n" + "\n".join(failed)
    assert not grew, "pages that read more with more patients (an N+1):\n" + "\n".join(grew)
    assert not over, f"pages over {CEILING} statements:\n" + "\n".join(over)
