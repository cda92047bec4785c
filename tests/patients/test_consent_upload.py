"""The signed consent scan (issue 11, finding 2): accepted only when its bytes are a PDF, JPEG or
PNG, stored under a generated name, refused while it arrives when too big, served so that no
script in it can run in the app's origin."""

import io
import re
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from core.uploads import NotAScan, identify_scan
from patients.models import Consent
from trial.models import ConsentVersion

from ..conftest import give_consent

SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
)
HTML = b"<!DOCTYPE html><html><body><script>fetch('/audit/?format=csv')</script></body></html>"


def _image(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buffer, fmt)
    return buffer.getvalue()


def _pdf() -> bytes:
    return _image("PDF")  # a real one-page PDF, as Pillow writes it


def _post(client, patient, andrologist, document, **extra):
    # The file comes first in the body: the fields after it must still arrive.
    data = {
        "document": document,
        "consent_version": ConsentVersion.objects.get().pk,
        "signed_at": (timezone.localtime() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "obtained_by": andrologist.pk,
        "witness_name": "Nurse Hoda",
        "patient_copy_given": "on",
        **extra,
    }
    return client.post(reverse("patients:consent-create", args=[patient.uuid]), data)


def _served(client, patient, consent):
    return client.get(reverse("patients:consent-document", args=[patient.uuid, consent.uuid]))


@pytest.mark.parametrize(
    ("name", "content", "declared", "what"),
    [
        ("scan.png", SVG, "image/png", "an SVG image"),
        ("scan.pdf", HTML, "application/pdf", "an HTML page"),
        ("scan.pdf", b"%PDF-1.4 <script>", "application/pdf", "a damaged or incomplete PDF"),
        ("scan.png", b"\x89PNG\r\n\x1a\n<svg>", "image/png", "a damaged or incomplete PNG image"),
        ("scan.jpg", b"\xff\xd8\xff<html>", "image/jpeg", "a damaged or incomplete JPEG image"),
        ("scan.gif", _image("GIF"), "image/gif", "a GIF image"),
    ],
)
def test_a_scan_is_judged_by_its_bytes_not_its_declared_type(
    client, patient, andrologist, protocol, name, content, declared, what
):
    client.force_login(andrologist)
    response = _post(
        client, patient, andrologist, SimpleUploadedFile(name, content, content_type=declared)
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Upload the signed form as a PDF, JPEG or PNG: this file is {what}." in page
    assert 'value="Nurse Hoda"' in page  # what was typed is kept
    assert not Consent.objects.exists()


@pytest.mark.parametrize(
    ("content", "uploaded_as", "content_type", "extension"),
    [
        (_pdf(), "Hassan Ali consent.pdf", "application/pdf", ".pdf"),
        (_image("PNG"), "scan.png", "image/png", ".png"),
        (_image("JPEG"), "scan.jpeg", "image/jpeg", ".jpg"),
        (_pdf(), "scan.png", "application/pdf", ".pdf"),  # the bytes decide the extension
    ],
)
def test_a_real_scan_is_stored_under_a_generated_name_and_shown_in_a_sandbox(
    client, patient, andrologist, protocol, content, uploaded_as, content_type, extension
):
    client.force_login(andrologist)
    declared = "application/octet-stream"
    response = _post(
        client, patient, andrologist, SimpleUploadedFile(uploaded_as, content, declared)
    )
    assert response.status_code == 302
    consent = patient.consents.get()
    folder = f"consents/{patient.site.code}/{patient.study_id}/"
    assert re.fullmatch(
        re.escape(folder) + r"[0-9a-f]{32}" + re.escape(extension), consent.document.name
    )
    assert "Hassan" not in consent.document.name and "scan" not in consent.document.name

    served = _served(client, patient, consent)
    assert b"".join(served.streaming_content) == content
    assert served["Content-Type"] == content_type
    assert served["Content-Disposition"].startswith("inline;")
    assert served["Content-Disposition"].endswith(f'{extension}"')
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Security-Policy"] == "sandbox"


def test_a_file_over_the_limit_is_dropped_as_it_arrives_and_the_form_says_so(
    client, patient, andrologist, protocol, settings, monkeypatch
):
    settings.CONSENT_UPLOAD_MAX_MB = 1
    limit = 1024 * 1024
    spooled = []
    for handler in (MemoryFileUploadHandler, TemporaryFileUploadHandler):
        original = handler.receive_data_chunk

        def counting(self, raw_data, start, original=original):
            passed_on = original(self, raw_data, start)
            if passed_on is None:  # this handler kept the chunk (in memory or on disk)
                spooled.append(len(raw_data))
            return passed_on

        monkeypatch.setattr(handler, "receive_data_chunk", counting)
    huge = _pdf() + b"\0" * (100 * limit)  # 100 MB

    client.force_login(andrologist)
    response = _post(client, patient, andrologist, SimpleUploadedFile("big.pdf", huge))

    assert response.status_code == 200
    page = response.content.decode()
    assert "The file is larger than 1 MB" in page
    assert 'value="Nurse Hoda"' in page  # the fields after the file in the body arrived
    assert not Consent.objects.exists()
    # What the next handlers (memory, then a temporary file) were given: at most the limit.
    assert sum(spooled) <= limit < sum(spooled) + TemporaryFileUploadHandler.chunk_size


def test_a_file_just_under_the_limit_is_accepted(client, patient, andrologist, protocol, settings):
    settings.CONSENT_UPLOAD_MAX_MB = 1
    pdf = _pdf()
    padded = pdf.replace(b"%%EOF", b"\n" * (1024 * 1024 - len(pdf)) + b"%%EOF")
    assert len(padded) == 1024 * 1024
    client.force_login(andrologist)
    response = _post(client, patient, andrologist, SimpleUploadedFile("scan.pdf", padded))
    assert response.status_code == 302
    assert patient.consents.get().document.size == 1024 * 1024


def test_the_consent_form_still_checks_csrf(patient, andrologist, protocol):
    client = Client(enforce_csrf_checks=True)
    client.force_login(andrologist)
    response = _post(client, patient, andrologist, SimpleUploadedFile("s.png", _image("PNG")))
    assert response.status_code == 403
    assert not Consent.objects.exists()


@pytest.mark.parametrize(
    ("stored_as", "content", "content_type", "disposition"),
    [
        ("evil.svg", SVG, "application/octet-stream", "attachment"),
        ("signed.pdf", HTML, "application/octet-stream", "attachment"),
        ("signed.pdf", _pdf(), "application/pdf", "inline"),
        ("photo.png", _image("JPEG"), "image/jpeg", "inline"),
    ],
)
def test_a_scan_stored_before_the_check_is_served_by_what_its_bytes_are(
    client, patient, andrologist, protocol, stored_as, content, content_type, disposition
):
    consent = give_consent(patient, andrologist)
    folder = f"consents/{patient.site.code}/{patient.study_id}/"
    name = default_storage.save(folder + stored_as, ContentFile(content))
    Consent.objects.filter(pk=consent.pk).update(document=name)  # as a row from before
    consent.refresh_from_db()

    client.force_login(andrologist)
    served = _served(client, patient, consent)
    assert b"".join(served.streaming_content) == content
    assert served["Content-Type"] == content_type
    assert served["Content-Disposition"].startswith(f"{disposition};")
    assert served["X-Content-Type-Options"] == "nosniff"
    # Inline: sandboxed (no script, no origin); a download keeps the app-wide policy.
    assert (served.get("Content-Security-Policy") == "sandbox") == (disposition == "inline")


def test_identify_scan_reads_the_bytes_and_rewinds():
    png = io.BytesIO(_image("PNG"))
    png.seek(7)
    assert identify_scan(png).content_type == "image/png" and png.tell() == 0
    with pytest.raises(NotAScan, match="empty"):
        identify_scan(io.BytesIO(b""))
    with pytest.raises(NotAScan, match="a damaged or incomplete PDF"):
        identify_scan(io.BytesIO(_pdf().replace(b"%%EOF", b"%%EOX")))
