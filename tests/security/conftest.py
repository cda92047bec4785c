"""Data shared by the security checks: a trial in use, so every kind of page has something to
show (the CSP crawl, the browser's CSP walk)."""

import pytest

from exports.models import PdfJob
from exports.services import pdf_job_request
from followup.services import ADVERSE_EVENTS, MEDICATIONS, log_entry_create
from monitoring.services import query_open

from ..exports.conftest import full_patient  # noqa: F401 - every CRF entered
from ..factories import today_minus
from ..followup.factories import ae_values, cm_values
from .world import build_world


@pytest.fixture
def trial_in_use(
    full_patient,  # noqa: F811
    andrologist,
    coordinator,
    monitor,
    admin_user,
):
    """Every kind of page has something to show: all CRFs, an AE, a medication, an open
    query, a PDF job."""
    log_entry_create(
        ADVERSE_EVENTS,
        patient=full_patient,
        data=ae_values(onset=today_minus(3)),
        user=andrologist,
    )
    log_entry_create(
        MEDICATIONS,
        patient=full_patient,
        data=cm_values(start=today_minus(40)),
        user=andrologist,
    )
    record = full_patient.visits.get(definition__code="SCR").labs_hormoneprofile_set.get()
    query_open(record=record, user=monitor, field_name="fsh", question="Units <b>checked</b>?")
    for user in (coordinator, admin_user):
        pdf_job_request(user=user, kind=PdfJob.Kind.CASEBOOK, patient=full_patient)
    return full_patient


@pytest.fixture
def world(protocol):
    """Two sites, one user per role per site, a patient at each with every kind of record
    (the access matrix and the leak scan)."""
    return build_world(protocol)
