"""core.scoping: the audit trail and PDF jobs are scoped by `for_user` like every clinical
record, and "who works at this site" is a membership, which being a superuser does not give."""

from django.contrib.contenttypes.models import ContentType

from audit.models import AuditEntry
from core.roles import Role
from core.scoping import member_site_ids, site_staff
from exports.models import PdfJob
from exports.selectors import pdf_jobs_for_user
from exports.services import pdf_job_request
from trial.models import StudySite
from trial.services import site_membership_add, study_config_delete

from ..conftest import make_user


def _configuration_row(site) -> AuditEntry:
    """A row about the study configuration: it has no patient, so no site."""
    return AuditEntry.objects.create(
        user_name="adam",
        action=AuditEntry.Action.UPDATE,
        content_type=ContentType.objects.get_for_model(StudySite),
        object_id=site.pk,
        object_repr=str(site),
        field_name="name",
    )


def test_the_trail_is_scoped_by_the_patients_site(
    andrologist, other_andrologist, consented_patient, other_patient
):
    mine = AuditEntry.objects.for_user(andrologist)
    assert mine.filter(patient=consented_patient).exists()
    assert not mine.filter(patient=other_patient).exists()
    assert AuditEntry.objects.for_user(other_andrologist).filter(patient=other_patient).exists()


def test_rows_of_no_site_are_for_administrators_only(site, other_site, andrologist, monitor):
    row = _configuration_row(site)
    admin = make_user("ada", Role.ADMIN, site)  # an administrator who is not a superuser
    assert AuditEntry.objects.for_user(admin).filter(pk=row.pk).exists()
    assert not AuditEntry.objects.for_user(andrologist).filter(pk=row.pk).exists()
    assert not AuditEntry.objects.for_user(monitor).filter(pk=row.pk).exists()


def test_pdf_jobs_are_scoped_by_their_site_and_study_jobs_by_their_requester(
    site, other_site, coordinator, consented_patient, other_patient
):
    casebook, _ = pdf_job_request(
        user=coordinator, kind=PdfJob.Kind.CASEBOOK, patient=consented_patient
    )
    study, _ = pdf_job_request(user=coordinator, kind=PdfJob.Kind.STUDY_CASEBOOKS)
    assert (casebook.site, study.site) == (site, None)
    assert set(pdf_jobs_for_user(user=coordinator)) == {casebook, study}
    # Moved to the other site: the casebook of a patient no longer his is gone from his list,
    # the study-wide job stays (it covers whatever sites he has).
    study_config_delete(coordinator.site_memberships.get(), user=None, reason="Moved")
    site_membership_add(user=coordinator, site=other_site)
    assert set(pdf_jobs_for_user(user=coordinator)) == {study}


def test_staff_of_a_site_are_its_active_members(
    site, other_site, andrologist, coordinator, other_andrologist, admin_user
):
    assert set(site_staff(site=site)) == {andrologist, coordinator, admin_user}
    assert set(site_staff(site=site, roles=[Role.COORDINATOR])) == {coordinator}
    coordinator.is_active = False
    coordinator.save()
    assert set(site_staff(site=site)) == {andrologist, admin_user}


def test_a_superuser_is_a_member_of_his_sites_only(
    site, other_site, andrologist, django_user_model
):
    root = django_user_model.objects.create_superuser("root", password="x-very-long-pass")
    assert member_site_ids(user=root) == frozenset()
    assert member_site_ids(user=andrologist) == {site.pk}
    assert member_site_ids(user=andrologist, roles=[Role.MONITOR]) == frozenset()
