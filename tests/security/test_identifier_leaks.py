"""No identifier leaks (issue 11): everything a user who may not see a patient's identity can
fetch (every page of the access matrix with real objects, the audit trail and its CSV
page by page, record histories, every CSV and the export ZIP, the ODM, the PDFs built by the
PDF jobs, the Django admin for the admin) is read and searched for the identity's name,
phone, national id and address, old and new (each identity was edited once, so the audit
trail holds both). Who may see them: staff of the patient's own site (core.identifiers.
can_see_identity); the positive control shows the scan finds them there."""

import math
import time

from django.db import transaction
from django.urls import reverse

from audit.models import AuditEntry
from core.identifiers import can_see_identity
from core.roles import Role
from exports.models import PdfJob
from monitoring.audit_review import REVIEW_CSV
from patients.models import Patient
from patients.services import patient_enrol

from ..exports.conftest import celery_conf
from ..factories import today_minus
from .access_table import TABLE
from .leaks import Scan
from .matrix import admin_url, client_for, quiet
from .urls import fill, is_admin, url_patterns
from .world import IDENTITIES, identity_values

# Who may not see the BEN patient's identity (and, for the monitor and the admin, nor the
# AND patient's): the monitor, the admin, and the staff of the other site (its andrologist
# and coordinator: the lab technician reads a subset of what they read).
SCANNED = (
    ("own", Role.MONITOR),
    ("own", Role.ADMIN),
    ("other", Role.ANDROLOGIST),
    ("other", Role.COORDINATOR),
)
HISTORY_MODELS = {
    "patients.patientidentity": lambda side: side.patient.identity,
    "patients.patient": lambda side: side.patient,
    "patients.consent": lambda side: side.consent,
    "labs.hormoneprofile": lambda side: side.hormones,
    "followup.adverseevent": lambda side: side.adverse_event,
    "followup.concomitantmedication": lambda side: side.medication,
}


def _body(response) -> bytes:
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content)
    return response.content


def _get(client, url):
    with transaction.atomic():
        response = client.get(url)
        body = _body(response)
        transaction.set_rollback(True)
    return response, body


def _forbidden_values(world, user) -> list[str]:
    """The identities the user may not see; and the study id of a patient of a site that
    is not theirs (site isolation of what pages say, not only of what they open)."""
    values = []
    for side in (world.own, world.other):
        if not can_see_identity(user=user, patient=side.patient):
            values.extend(identity_values(side.site.code))
        if not Patient.objects.for_user(user).filter(pk=side.patient.pk).exists():
            values.append(side.patient.study_id)
    return values


def _matrix_urls(world, user) -> list[str]:
    """Every GET URL of the access table, with the objects of both sites."""
    urls = []
    for pattern in url_patterns():
        access = TABLE.get(pattern.name)
        if is_admin(pattern) or access is None or access.get is None:
            continue
        for variant in ("own", "other") if pattern.kwargs else ("own",):
            urls.append(reverse(pattern.name, kwargs=fill(pattern, world, variant, user)))
    return urls


def _audit_urls(world, user) -> list[str]:
    """The audit trail (its first page, and page by page for each patient the user sees: a
    search for another one would only echo the search), its CSV, the review and its CSVs,
    the consent audit and user access CSVs, every record history."""
    trail = reverse("audit:trail")
    urls = [f"{trail}?format=csv", trail, reverse("monitoring:audit-review")]
    for side in (world.own, world.other):
        study_id = side.patient.study_id
        if Patient.objects.for_user(user).filter(pk=side.patient.pk).exists():
            per_patient = AuditEntry.objects.filter(patient=side.patient).count()
            pages = range(1, math.ceil(per_patient / 50) + 1)
            urls += [f"{trail}?study_id={study_id}&page={n}" for n in pages]
        for label, record in HISTORY_MODELS.items():
            urls.append(reverse("audit:record-history", args=[label, record(side).uuid]))
    review = reverse("monitoring:audit-review")
    urls += [f"{review}?format=csv&section={section}" for section in REVIEW_CSV]
    urls += [
        reverse("monitoring:consent-audit") + "?format=csv",
        reverse("monitoring:user-access") + "?format=csv",
        reverse("monitoring:user-access") + "?format=history-csv",
    ]
    return urls


def _admin_urls(world) -> list[str]:
    """The admin's pages: every admin URL, and the change page of every audit row of an
    identity (the read-only trail shows old and new values)."""
    urls = [u for u in (admin_url(p) for p in url_patterns() if is_admin(p)) if u]
    identities = [world.own.patient.identity.pk, world.other.patient.identity.pk]
    entries = AuditEntry.objects.filter(
        content_type__model="patientidentity", object_id__in=[str(i) for i in identities]
    )
    urls += [reverse("admin:audit_auditentry_change", args=[e.pk]) for e in entries]
    changelist = reverse("admin:audit_auditentry_changelist")
    urls += [f"{changelist}?p={n}" for n in range(math.ceil(AuditEntry.objects.count() / 100))]
    return urls


# The PDFs built as the monitor and the admin (the other site's staff build only their own
# patients' PDFs, which name no identity of this site: the access matrix keeps them there).
# The admin's study ZIP holds both sites' casebooks; the monitor adds a visit PDF and the
# results report.
PDF_REQUESTS = {
    Role.MONITOR: [
        {"kind": "visit", "patient": "{patient}", "visit": "{visit}"},
        {"kind": "form", "patient": "{patient}", "slot": "{visit}/hormones/1"},
    ],
    Role.ADMIN: [{"kind": "study_casebooks"}],
}


def _built_pdfs(client, user, side, django_capture_on_commit_callbacks) -> list[str]:
    """Ask for the user's PDFs, built in-process (eager Celery) after the request commits
    (the monitor also asks for the results report). The download URLs of the jobs."""
    role = Role.ADMIN if user.is_superuser else user.groups.values_list("name", flat=True)[0]
    fields = {"patient": side.patient.uuid, "visit": side.screening.uuid, "site": side.site.uuid}
    before = set(PdfJob.objects.filter(requested_by=user).values_list("pk", flat=True))
    with celery_conf(task_always_eager=True):
        for ask in PDF_REQUESTS.get(role, []):
            data = {key: value.format(**fields) for key, value in ask.items()}
            with django_capture_on_commit_callbacks(execute=True):
                client.post(reverse("exports:pdf-request"), data)
        if role == Role.MONITOR:
            with django_capture_on_commit_callbacks(execute=True):
                client.post(reverse("exports:results-pdf"), {})
    jobs = PdfJob.objects.filter(requested_by=user).exclude(pk__in=before)
    assert len(jobs) == len(PDF_REQUESTS.get(role, [])) + (role == Role.MONITOR)
    assert all(job.status == PdfJob.Status.DONE for job in jobs), [
        (job.kind, job.status, job.error) for job in jobs
    ]
    return [reverse("exports:job-download", args=[job.uuid]) for job in jobs]


def test_identifiers_never_reach_a_user_who_may_not_see_them(
    world, django_capture_on_commit_callbacks, record_property
):
    started, cpu = time.monotonic(), time.process_time()
    scan = Scan()
    admin_urls = _admin_urls(world)
    for variant, role in SCANNED:
        user = world.user(role, variant)
        side = world.side(variant)
        forbidden = _forbidden_values(world, user)
        assert forbidden, f"{user}: nothing to look for"
        client = client_for(user)
        urls = _matrix_urls(world, user) + _audit_urls(world, user)
        if user.is_superuser:
            urls += admin_urls
        with quiet():
            urls += _built_pdfs(client, user, side, django_capture_on_commit_callbacks)
            for url in urls:
                response, body = _get(client, url)
                assert response.status_code < 500, (user.username, url, response.status_code)
                scan.read(who=user.username, url=url, content=body, forbidden=forbidden)
    summary = (
        f"identifier scan: {len(SCANNED)} users, {scan.responses} responses "
        f"({len(scan.urls)} distinct URLs), {scan.bytes / 1e6:.1f} MB read, "
        f"{len(scan.leaks)} leaks; {time.monotonic() - started:.1f} s wall, "
        f"{time.process_time() - cpu:.1f} s CPU in this process"
    )
    print(summary)
    record_property("identifier_scan", summary)
    assert not scan.leaks, summary + "\n" + scan.report()


def test_the_scan_finds_the_identity_where_the_sites_staff_may_see_it(site, andrologist):
    """The positive control: the same scan, as an andrologist of the patient's own site on
    the identity page, finds the world's name, phone and national id (so a leak would be
    found, and pages do not spell the values differently). One patient, not the world."""
    identity = IDENTITIES["BEN"][1]
    patient = patient_enrol(
        site=site,
        user=andrologist,
        date_of_birth=today_minus(365 * 33),
        enrolment_date=today_minus(40),
        **identity,
    )
    response, body = _get(
        client_for(andrologist), reverse("patients:identity-edit", args=[patient.uuid])
    )
    assert response.status_code == 200
    scan = Scan()
    wanted = [identity["full_name"], identity["phone"], identity["national_id"]]
    scan.read(who=andrologist.username, url="identity", content=body, forbidden=wanted)
    assert sorted(leak.value for leak in scan.leaks) == sorted(wanted)
