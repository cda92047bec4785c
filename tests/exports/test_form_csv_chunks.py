"""form_csv (issue 12): the per-form CSV written in chunks, its cells made text by PostgreSQL,
must be byte for byte the CSV of form_rows through core.csv (the Python path, which SQLite
takes too): codes, labels, ISO dates and times, UTC date-times, decimals, empty cells,
formula guards and quoting."""

from datetime import time

import pytest

from core import crf
from core.csv import csv_lines
from exports import datasets
from exports.datasets import form_csv, form_rows

from ..conftest import enrol, give_consent
from ..factories import complete_screening


def _python_csv(user, code: str) -> str:
    return "".join(csv_lines(form_rows(user=user, code=code)))


def _awkward_values(patient) -> None:
    """Values that test the text conversion and the guards: a formula, a negative number as
    text, a comma, a quote and a line break, an empty text, a time with microseconds."""
    eos = crf.get("end_of_study").model.objects.get(visit__patient=patient)
    type(eos).objects.filter(pk=eos.pk).update(
        comments='=HYPERLINK("http://x","y"), said "no"\nthen left', withdrawal_reason="-12.5"
    )
    aspirate = crf.get("bm_aspirate").model.objects.get(visit__patient=patient)
    type(aspirate).objects.filter(pk=aspirate.pk).update(
        aspiration_time=time(9, 5, 7, 250000), operator="+ward 4", complications_detail=""
    )
    karyotype = crf.get("karyotype").model.objects.get(visit__patient=patient)
    type(karyotype).objects.filter(pk=karyotype.pk).update(detail="@mosaic, 46,XY")


def test_every_form_csv_is_byte_for_byte_the_csv_of_its_rows(
    coordinator, andrologist, site, full_patient
):
    patient = enrol(site, andrologist)
    give_consent(patient, andrologist)
    complete_screening(patient.visits.get(definition__code="SCR"), andrologist)
    _awkward_values(full_patient)
    for definition in crf.all_definitions():
        chunks = list(form_csv(user=coordinator, code=definition.code))
        assert "".join(chunks) == _python_csv(coordinator, definition.code), definition.code
    text = "".join(form_csv(user=coordinator, code="end_of_study"))
    assert '"\'=HYPERLINK(""http://x"",""y""), said ""no""\nthen left"' in text
    assert ",-12.5," in text  # a number stays a number
    aspirate = "".join(form_csv(user=coordinator, code="bm_aspirate"))
    assert "09:05:07.250000" in aspirate and "'+ward 4" in aspirate


def test_the_rows_come_in_chunks_of_many_rows(coordinator, andrologist, site, full_patient):
    for _ in range(2):
        patient = enrol(site, andrologist)
        give_consent(patient, andrologist)
        complete_screening(patient.visits.get(definition__code="SCR"), andrologist)
    original = datasets.CSV_ROWS_PER_CHUNK
    datasets.CSV_ROWS_PER_CHUNK = 4
    try:
        chunks = list(form_csv(user=coordinator, code="semen_analysis"))
    finally:
        datasets.CSV_ROWS_PER_CHUNK = original
    # header, then 3 patients x 3 screening analyses + BEN-001's M4: 11 lines, at most 4 a
    # chunk (PostgreSQL writes the header as a chunk of its own: 1, 4, 4, 2; SQLite 4, 4, 3)
    lines = [chunk.count("\r\n") for chunk in chunks]
    assert sum(lines) == 11 and max(lines) == 4 and len(lines) >= 3
    assert "".join(chunks) == _python_csv(coordinator, "semen_analysis")


def test_a_form_csv_reads_the_database_once_whatever_the_number_of_forms(
    coordinator, andrologist, site, full_patient, django_assert_num_queries
):
    for _ in range(3):
        patient = enrol(site, andrologist)
        give_consent(patient, andrologist)
        complete_screening(patient.visits.get(definition__code="SCR"), andrologist)
    with django_assert_num_queries(1):
        text = "".join(form_csv(user=coordinator, code="semen_analysis"))
    assert text.count("\r\n") == 1 + 4 * 3 + 1  # header, 3 screening analyses each, one M4


@pytest.mark.postgres
def test_on_postgresql_every_form_of_the_protocol_takes_the_database_path(coordinator):
    from exports.datasets import _form_items, _sql_columns
    from exports.metadata import crf_layout

    slow = [
        d.code
        for d in crf.all_definitions()
        if _sql_columns(d.model, _form_items(crf_layout(d.code))) is None
    ]
    assert slow == []
