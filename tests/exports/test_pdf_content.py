"""What a monitor reads on the PDFs: read back from the PDF itself (pdftotext, pdftoppm)."""

import shutil
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from core import crf
from core.pdf import PDF_BASE_URL, static_url_fetcher
from exports.metadata import crf_layout
from exports.pdf import crf_document, crf_document_pdf
from exports.selectors import crf_content_types, patient_data
from labs.forms import HormoneProfileForm

from ..factories import save_crf
from .conftest import first_page_png, pdf_page_count, pdf_text

NOW = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)


def _pdf(patient, user, **kwargs) -> bytes:
    layouts = {d.code: crf_layout(d.code) for d in crf.all_definitions()}
    document = crf_document(
        data=patient_data(patient=patient),
        layouts=layouts,
        model_codes=crf_content_types(),
        title=kwargs.pop("title", "Casebook"),
        generated_by=user,
        generated_at=NOW,
        **kwargs,
    )
    return crf_document_pdf(document)


def test_the_casebook_shows_every_value_with_its_label_decode_and_unit_but_no_identifier(
    full_patient, coordinator, tmp_path
):
    text = pdf_text(_pdf(full_patient, coordinator), tmp_path)
    # Who and what: protocol, registry id, site, study id; never a direct identifier.
    for expected in (
        "NCT02025270",
        "NOA-MSC v1.0",
        "BEN – University urology department",
        "BEN-001",
        "Visit SCR – Screening",
        "Visit M4 – Month 4",
    ):
        assert expected in text, expected
    identity = full_patient.identity
    for secret in (identity.full_name, "Secretname", identity.phone, identity.national_id):
        assert secret not in text
    assert full_patient.date_of_birth.strftime("%d %b %Y") not in text
    # Values with their labels, decodes and units, in the form's sections.
    for expected in (
        "Primary infertility",
        "Yes [Y]",
        "Inclusion criteria (all must be Yes)",
        "Motility and morphology (only when sperm was seen)",
        "Smoking",
        "Never [NEVER]",
        "Sertoli-cell-only syndrome (SCOS) [SCOS]",
        "In the centrifuged pellet only [PELLET]",
        "Semen analysis (2 of 3)",
        "IU/L",
        "24.10",  # FSH after its correction
        "18.20",  # FSH at month 4
        "not recorded",
    ):
        assert expected in text, expected
    # The flagged value, and the correction with its reason.
    assert "FLAGGED: Abstinence" in text
    assert "Changes after first entry (audit trail)" in text
    assert "Transcription error, lab report" in text
    assert "22.5" in text  # the old value of the corrected FSH
    # Header and footer on every page.
    pages = pdf_page_count(_pdf(full_patient, coordinator), tmp_path)
    assert pages > 2
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert text.count("Generated 2026-05-10 08:00 UTC by Carol (carol)") >= pages
    # No signature system yet (issue 5): the blocks say so rather than stay silent.
    assert "Investigator signature – casebook" in text
    assert "Not signed electronically." in text


def test_a_form_pdf_holds_that_form_only(full_patient, coordinator, tmp_path):
    visit = full_patient.visits.get(definition__code="SCR")
    text = pdf_text(
        _pdf(
            full_patient,
            coordinator,
            title="Case report form",
            visit_id=visit.pk,
            form=("hormones", 1),
        ),
        tmp_path,
    )
    assert "Case report form" in text and "Hormones" in text and "24.10" in text
    assert "Semen analysis" not in text and "Eligibility" not in text
    assert "Contents" not in text  # no cover page for one form


def test_a_visit_pdf_lists_the_forms_not_entered_yet(consented_patient, andrologist, tmp_path):
    visit = consented_patient.visits.get(definition__code="SCR")
    save_crf("hormones", visit, andrologist)
    text = pdf_text(_pdf(consented_patient, andrologist, visit_id=visit.pk), tmp_path)
    assert "Hormones" in text
    assert "Not entered at this visit: Eligibility" in text
    assert "Semen analysis 3" in text


def test_T_ES_02_signatures_and_open_queries_are_printed_where_they_belong(
    full_patient, coordinator, andrologist, monitor, rf, tmp_path
):
    """21 CFR 11.50: the printed name, date and time and meaning of each signature appear on
    the printout; open data queries are marked next to their field."""
    from monitoring.models import Signature
    from monitoring.services import query_open, signature_sign

    scr = full_patient.visits.get(definition__code="SCR")
    request = rf.post("/")
    request.user = andrologist
    signature = signature_sign(
        request=request,
        patient=full_patient,
        visit=scr,
        username="alice",
        password="correct-horse-battery",
        meaning=Signature.Meaning.INVESTIGATOR_APPROVAL,
        user=andrologist,
        agree=True,
    )
    m4_hormones = full_patient.visits.get(definition__code="M4").labs_hormoneprofile_set.get()
    query = query_open(
        record=m4_hormones, field_name="lh", question="Please confirm LH units", user=monitor
    )
    text = pdf_text(_pdf(full_patient, coordinator), tmp_path)
    # Every time on a CRF PDF is UTC and says so: at 00:30 in Cairo the date is still the
    # day before in UTC, and the reader sees why.
    raised = query.created_at.astimezone(UTC)
    assert f"OPEN QUERY: Please confirm LH units (mona, {raised:%d %b %Y %H:%M} UTC)" in text
    signed = signature.signed_at.astimezone(UTC)
    assert signature.signer_full_name in text and f"{signed:%d %b %Y %H:%M} UTC" in text
    assert "I confirm the data are accurate and complete" in text
    assert "1 open query" in text


def test_a_field_moved_to_a_new_section_of_the_form_moves_in_the_pdf(
    full_patient, coordinator, monkeypatch, tmp_path
):
    """One layout definition per form: the PDF reads the web form's sections."""
    hormones = full_patient.visits.get(definition__code="SCR").labs_hormoneprofile_set.get()
    hormones.prolactin = Decimal("14.5")
    hormones.save()
    sections = [
        (title, [n for n in names if n != "prolactin"])
        for title, names in HormoneProfileForm.sections
    ]
    monkeypatch.setattr(HormoneProfileForm, "sections", [*sections, ("Pituitary", ["prolactin"])])
    text = pdf_text(_pdf(full_patient, coordinator), tmp_path)
    assert "Pituitary" in text
    assert "Prolactin (ng/mL)" in text and "14.5" in text


def test_page_one_renders_to_an_image_a_person_can_look_at(full_patient, coordinator, tmp_path):
    png = first_page_png(_pdf(full_patient, coordinator), tmp_path)
    header = png.read_bytes()[:24]
    assert header.startswith(b"\x89PNG")
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert 490 <= width <= 500 and 695 <= height <= 705  # A4 (210 x 297 mm) at 60 dpi
    assert png.stat().st_size > 15_000  # text and tables, not a blank page
    keep = settings.BASE_DIR / "test-artifacts" / "casebook-page-1.png"
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, keep)


def test_every_registered_form_has_a_blank_and_an_annotated_crf(client, lab_technician, tmp_path):
    client.force_login(lab_technician)
    for definition in crf.all_definitions():
        url = reverse("exports:blank-crf", args=[definition.code])
        response = client.get(url)
        assert response["Content-Type"] == "application/pdf", definition.code
        text = pdf_text(response.content, tmp_path)
        assert f"Blank CRF – {definition.title}" in text
        assert "Study ID" in text and "NCT02025270" in text
        annotated = pdf_text(client.get(url, {"annotated": "1"}).content, tmp_path)
        assert f"Annotated CRF – {definition.title}" in annotated
        for item in crf_layout(definition.code).items:
            assert item.name in annotated.replace("\n", " "), (definition.code, item.name)


def test_the_blank_hormone_crf_is_empty_and_the_annotated_one_explains_it(
    client, coordinator, full_patient, tmp_path
):
    client.force_login(coordinator)
    url = reverse("exports:blank-crf", args=["hormones"])
    blank = pdf_text(client.get(url).content, tmp_path)
    assert "FSH (IU/L)" in blank and "Total testosterone" in blank and "IU/L" in blank
    assert "ng/mL" in blank and "nmol/L" in blank  # the unit choice of the paper form
    assert "24.10" not in blank and "BEN-001" not in blank
    annotated = pdf_text(client.get(url, {"annotated": "1"}).content, tmp_path)
    for expected in ("fsh float(5,2)", "plausible 0 - 200", "LOINC 15067-2", "testosterone_unit"):
        assert expected in annotated, expected
    assert "not stored (the form converts it)" in annotated
    semen = pdf_text(
        client.get(
            reverse("exports:blank-crf", args=["semen_analysis"]), {"annotated": "1"}
        ).content,
        tmp_path,
    )
    assert "NY: Y=Yes | N=No" in semen
    assert "expected 2 - 7" in semen


def test_pdfs_read_static_files_from_disk_and_never_from_the_network():
    css = static_url_fetcher(PDF_BASE_URL + "static/pdf/crf.css")
    with css["file_obj"] as handle:
        assert b"@font-face" in handle.read()
    font = static_url_fetcher(PDF_BASE_URL + "static/pdf/fonts/DejaVuSans.ttf")
    font["file_obj"].close()
    assert font["mime_type"] in ("font/ttf", "application/x-font-ttf", None)
    for url in ("https://example.org/evil.css", PDF_BASE_URL + "static/../config/settings/base.py"):
        try:
            static_url_fetcher(url)
        except Exception as exc:  # noqa: BLE001 - any refusal will do
            assert exc is not None
        else:
            raise AssertionError(f"fetched {url}")


def test_times_on_the_pdf_are_utc_whatever_the_display_time_zone(
    full_patient, coordinator, tmp_path, settings
):
    settings.TIME_ZONE = "Africa/Cairo"
    timezone.activate("Africa/Cairo")
    text = pdf_text(_pdf(full_patient, coordinator), tmp_path)
    assert "Generated 2026-05-10 08:00 UTC" in text


def test_the_casebook_ends_with_the_adverse_event_log(
    full_patient, coordinator, andrologist, tmp_path
):
    from followup.services import adverse_event_create

    from ..factories import today_minus
    from ..followup.factories import ae_values

    event = adverse_event_create(
        patient=full_patient, data=ae_values(onset=today_minus(3)), user=andrologist
    )
    text = pdf_text(_pdf(full_patient, coordinator), tmp_path)
    assert "Adverse event log" in text
    assert event.term in text and event.get_ctcae_grade_display() in text


def test_the_casebook_ends_with_the_concomitant_medication_log(
    full_patient, coordinator, andrologist, tmp_path
):
    from followup.services import MEDICATIONS, concomitant_medication_create, log_entry_void

    from ..factories import today_minus
    from ..followup.factories import cm_values

    concomitant_medication_create(
        patient=full_patient,
        data=cm_values(start=today_minus(400), ongoing=False, end_date=today_minus(200)),
        user=andrologist,
    )
    voided = concomitant_medication_create(
        patient=full_patient,
        data=cm_values(start=today_minus(3), medication="Omeprazole", hormone_class="NONE"),
        user=andrologist,
    )
    log_entry_void(MEDICATIONS, entry=voided, user=andrologist, reason="Wrong patient")
    text = pdf_text(_pdf(full_patient, coordinator), tmp_path)
    assert "Concomitant medications" in text
    assert "Clomiphene citrate" in text and "Male infertility" in text and "50 mg" in text
    assert f"{today_minus(400):%d %b %Y} – {today_minus(200):%d %b %Y}" in text
    assert "Clomiphene or other SERM" in text
    assert "Omeprazole (voided: Wrong patient)" in text


def test_a_visit_pdf_has_no_medication_log(full_patient, coordinator, andrologist, tmp_path):
    from followup.services import concomitant_medication_create

    from ..factories import today_minus
    from ..followup.factories import cm_values, visit

    concomitant_medication_create(
        patient=full_patient, data=cm_values(start=today_minus(3)), user=andrologist
    )
    text = pdf_text(
        _pdf(full_patient, coordinator, visit_id=visit(full_patient, "M4").pk), tmp_path
    )
    assert "Clomiphene citrate" not in text


def test_the_casebook_shows_the_course_charts_of_the_patient_page(
    full_patient, coordinator, tmp_path
):
    text = pdf_text(_pdf(full_patient, coordinator), tmp_path)
    assert "Course over the visits" in text
    assert "FSH and LH" in text and "Testicular volume" in text and "Sperm found per visit" in text
