"""One query set per casebook, not one per form (issue 12): reading and arranging a patient's
casebook, and writing its HTML, runs a fixed number of queries whatever the number of forms,
visits and patients (a ZIP reads its patients in batches with the same set)."""

from django.template.loader import render_to_string
from django.utils import timezone

from core import crf
from exports.metadata import crf_layout
from exports.pdf import crf_document
from exports.selectors import crf_content_types, patient_data, patient_data_batches
from patients.models import Patient

from ..conftest import enrol, give_consent
from ..factories import complete_screening

# The scope check, the viewer's sites, patients, chain heads, visits, consents, one per CRF
# model (13), audit, signatures, open queries, adverse events, medications (24), and the
# active protocol read by the eligibility form's layout (once per job, not per patient).
CASEBOOK_QUERIES = 25


def _casebook_html(patient, user) -> str:
    document = crf_document(
        data=patient_data(patient=patient, viewer=user),
        layouts={d.code: crf_layout(d.code) for d in crf.all_definitions()},
        model_codes=crf_content_types(),
        title="Casebook",
        generated_by=user,
        generated_at=timezone.now(),
    )
    return render_to_string("pdf/crf_document.html", {"doc": document})


def test_a_casebook_reads_one_query_set_not_one_query_per_form(
    full_patient, coordinator, django_assert_max_num_queries
):
    crf_content_types()  # cached per process, as in a worker
    with django_assert_max_num_queries(CASEBOOK_QUERIES):
        html = _casebook_html(full_patient, coordinator)
    # every form of the patient is in it: the count does not come from leaving some out
    assert html.count('class="form"') >= len(crf.all_definitions())


def test_a_batch_of_casebooks_reads_the_same_query_set_as_one(
    full_patient, coordinator, andrologist, site, django_assert_max_num_queries
):
    for _ in range(3):
        patient = enrol(site, andrologist)
        give_consent(patient, andrologist)
        complete_screening(patient.visits.get(definition__code="SCR"), andrologist)
    crf_content_types()  # cached per process, as in a worker
    patients = Patient.objects.filter(site=site)
    with django_assert_max_num_queries(CASEBOOK_QUERIES):
        loaded = list(patient_data_batches(patients=patients, viewer=coordinator))
    assert len(loaded) == 4
    assert all(sum(len(r) for r in data.records.values()) >= 10 for data in loaded)
