"""The fixture world of the adversarial checks: two sites, one user per role per site (the
admin, a superuser, works at both), and at each site one patient with every kind of record
(identity edited once, consent with its scan, every screening / procedure / follow-up CRF,
end of study, an adverse event, a medication, a data query, a signed visit, an SDV mark,
PDF jobs), so every URL with object kwargs can be filled with a real object of either site.

Built through the same services and test helpers as the rest of the suite
(tests/conftest.py, tests/factories.py, tests/followup/factories.py)."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.utils import timezone

from core.roles import Role
from exports import services as export_services
from exports.models import PdfJob
from followup import services as followup_services
from followup.services import end_of_study_visit_open
from monitoring import services as monitoring_services
from monitoring.models import Signature
from patients import services as patient_services
from trial.selectors import current_consent_version

from ..conftest import give_consent, make_user
from ..factories import complete_screening, save_crf, today_minus
from ..followup.factories import ae_values, cm_values, procedure_day, save, visit

# Distinctive identities: each value occurs nowhere else in the app, so finding it in a
# response is a leak. Each identity is edited once (first -> second), so the audit trail
# holds both the old and the new value of every field.
IDENTITIES = {
    "BEN": (
        {
            "full_name": "Quillon Vantarrow",
            "phone": "+20 155 731 9024",
            "national_id": "28807150198765",
            "address": "17 Lanternwick Lane, Benha",
        },
        {
            "full_name": "Quillon Brassmoor",
            "phone": "+20 122 846 3307",
            "national_id": "29911230456781",
            "address": "4 Oakhollow Crescent, Benha",
        },
    ),
    "AND": (
        {
            "full_name": "Zephyr Haldane-Morrow",
            "phone": "+20 100 462 7719",
            "national_id": "27703310112358",
            "address": "9 Saltmarsh Row, Cairo",
        },
        {
            "full_name": "Zephyr Ellingsworth",
            "phone": "+20 111 938 5052",
            "national_id": "28512050313213",
            "address": "22 Windlestraw Court, Cairo",
        },
    ),
}

# The roles of the access matrix, in the order they are reported.
ROLES = (Role.ANDROLOGIST, Role.COORDINATOR, Role.LAB_TECHNICIAN, Role.MONITOR, Role.ADMIN)
SCAN_PDF = b"%PDF-1.4\n% matrix test scan\n%%EOF\n"


def identity_values(site_code: str) -> list[str]:
    """Every value of the site's identity, old and new; phones also without spaces."""
    values = []
    for version in IDENTITIES[site_code]:
        for name, value in version.items():
            values.append(value)
            if name == "phone":
                values.append(value.replace(" ", ""))
            if name == "full_name":
                values.extend(part for part in value.split() if len(part) > 5)
    return sorted(set(values))


@dataclass
class SiteWorld:
    """One site's users and its patient's records, by the URL kwarg they fill."""

    site: object
    users: dict = field(default_factory=dict)  # role -> user
    patient: object = None
    consent: object = None
    screening: object = None  # the SCR visit: CRFs, queries, SDV
    signed_visit: object = None  # M4: signed, so signature URLs have a real signature
    hormones: object = None  # a screening CRF (crf-edit, query-open, history...)
    adverse_event: object = None
    medication: object = None
    query: object = None
    signature: object = None
    jobs: dict = field(default_factory=dict)  # requester pk -> a finished casebook job


@dataclass
class World:
    own: SiteWorld  # BEN, where the users under test work
    other: SiteWorld  # AND
    admin: object
    consent_version: object

    def side(self, variant: str) -> SiteWorld:
        return self.own if variant == "own" else self.other

    def user(self, role: str, variant: str = "own"):
        return self.admin if role == Role.ADMIN else self.side(variant).users[role]


def _users(site, code: str) -> dict:
    prefix = code.lower()
    return {
        Role.ANDROLOGIST: make_user(f"{prefix}-andrologist", Role.ANDROLOGIST, site),
        Role.COORDINATOR: make_user(f"{prefix}-coordinator", Role.COORDINATOR, site),
        Role.LAB_TECHNICIAN: make_user(f"{prefix}-labtech", Role.LAB_TECHNICIAN, site),
        Role.MONITOR: make_user(f"{prefix}-monitor", Role.MONITOR, site),
    }


def _patient_with_every_record(
    side: SiteWorld, code: str, identities: tuple[dict, dict] | None = None
) -> None:
    andrologist = side.users[Role.ANDROLOGIST]
    first, second = identities or IDENTITIES[code]
    patient = patient_services.patient_enrol(
        site=side.site,
        user=andrologist,
        date_of_birth=today_minus(365 * 33),
        enrolment_date=today_minus(40),
        **first,
    )
    patient_services.identity_update(
        identity=patient.identity,
        data=second,
        user=andrologist,
        reason="Patient moved and remarried",
    )
    give_consent(patient, andrologist, days_ago=40)
    consent = patient.consents.get()
    consent.document.save("scan.pdf", ContentFile(SCAN_PDF), save=True)
    screening = patient.visits.get(definition__code="SCR")
    complete_screening(screening, andrologist)
    hormones = screening.labs_hormoneprofile_set.get()
    hormones.fsh = Decimal("24.1")
    patient_services.crf_save(record=hormones, user=andrologist, reason="Transcription error")
    procedure_day(patient, andrologist, on=today_minus(5))
    m4 = visit(patient, "M4")
    save("followup_visit", m4, andrologist, on=today_minus(2))
    save_crf("semen_analysis", m4, andrologist, assessment_date=today_minus(2))
    save_crf("hormones", m4, andrologist, assessment_date=today_minus(2))
    side.adverse_event = followup_services.adverse_event_create(
        patient=patient, data=ae_values(onset=today_minus(3)), user=andrologist
    )
    side.medication = followup_services.concomitant_medication_create(
        patient=patient, data=cm_values(start=today_minus(10)), user=andrologist
    )
    monitor = side.users[Role.MONITOR]
    side.query = monitoring_services.query_open(
        record=hormones, field_name="fsh", question="FSH as on the lab report?", user=monitor
    )
    monitoring_services.source_verify(record=hormones, user=monitor, note="Checked at the visit")
    request = RequestFactory().post("/sign/")
    request.user = andrologist
    side.signature = monitoring_services.signature_sign(
        request=request,
        patient=patient,
        visit=m4,
        username=andrologist.username,
        password="correct-horse-battery",
        meaning=Signature.Meaning.INVESTIGATOR_APPROVAL,
        user=andrologist,
        agree=True,
    )
    eos = end_of_study_visit_open(patient=patient, user=andrologist)
    save("end_of_study", eos, andrologist, on=today_minus(1))
    side.patient, side.consent, side.screening = patient, consent, screening
    side.signed_visit, side.hormones = m4, hormones


def _finished_job(user, patient) -> PdfJob:
    """A casebook job of `user`, marked done with a small file: the job pages and the
    download have something real to serve (the leak scan builds real PDFs)."""
    job, _ = export_services.pdf_job_request(user=user, kind=PdfJob.Kind.CASEBOOK, patient=patient)
    job.file.save("casebook.pdf", ContentFile(SCAN_PDF), save=False)
    job.status = PdfJob.Status.DONE
    job.finished_at = timezone.now()
    job.save()
    return job


def add_patients(world: World, per_site: int) -> None:
    """`per_site` more patients at each site with every kind of record, as the world's own
    (the query-growth check: a page must not read more when the study grows)."""
    for side, code in ((world.own, "BEN"), (world.other, "AND")):
        for n in range(per_site):
            extra = SiteWorld(site=side.site, users=side.users)
            identities = tuple(
                {**version, "full_name": f"Extra{n} {version['full_name']}", "national_id": ""}
                for version in IDENTITIES[code]
            )
            _patient_with_every_record(extra, code, identities)


def build_world(protocol) -> World:
    own = SiteWorld(site=protocol.sites.get(code="BEN"))
    other = SiteWorld(site=protocol.sites.get(code="AND"))
    admin = make_user(
        "matrix-admin", Role.ADMIN, own.site, other.site, is_staff=True, is_superuser=True
    )
    version = current_consent_version(protocol=protocol)
    version.document.save("approved.pdf", SimpleUploadedFile("approved.pdf", SCAN_PDF), save=False)
    version.save()
    for side, code in ((own, "BEN"), (other, "AND")):
        side.users = _users(side.site, code)
        _patient_with_every_record(side, code)
    for side in (own, other):
        for role in (Role.ANDROLOGIST, Role.COORDINATOR, Role.MONITOR):
            user = side.users[role]
            side.jobs[user.pk] = _finished_job(user, side.patient)
        side.jobs[admin.pk] = _finished_job(admin, side.patient)
    return World(own=own, other=other, admin=admin, consent_version=version)
