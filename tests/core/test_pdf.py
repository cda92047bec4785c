"""core.pdf: the one WeasyPrint renderer of the CRF PDFs and the results report."""

import subprocess

import pytest

from core.pdf import PDF_BASE_URL, html_to_pdf, static_url_fetcher


def test_static_files_are_read_from_disk():
    for path, expected, mime in (
        ("static/pdf/crf.css", b"@font-face", "text/css"),
        ("static/reports/results-print.css", b"@page", "text/css"),
    ):
        fetched = static_url_fetcher(PDF_BASE_URL + path)
        with fetched["file_obj"] as handle:
            assert expected in handle.read()
        assert fetched["mime_type"] == mime


def test_a_file_missing_from_the_finders_is_read_from_static_root(settings, tmp_path):
    (tmp_path / "collected.css").write_text("p { color: red }")
    settings.STATIC_ROOT = tmp_path
    fetched = static_url_fetcher(PDF_BASE_URL + "static/collected.css")
    with fetched["file_obj"] as handle:
        assert handle.read() == b"p { color: red }"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/tracker.png",
        PDF_BASE_URL + "media/patient/scan.pdf",
        PDF_BASE_URL + "static/../config/settings/base.py",
        PDF_BASE_URL + "static/no-such-file.css",
    ],
)
def test_nothing_else_is_fetched(url):
    with pytest.raises((ValueError, Exception), match="Only static files|outside"):
        static_url_fetcher(url)


def test_a_page_becomes_a_pdf_with_the_shipped_font(tmp_path):
    content = html_to_pdf(
        '<link rel="stylesheet" href="/static/pdf/crf.css"><p>Semen analysis 2 of 3</p>'
    )
    assert content.startswith(b"%PDF-")
    path = tmp_path / "page.pdf"
    path.write_bytes(content)
    text = subprocess.run(["/usr/bin/pdftotext", str(path), "-"], capture_output=True, text=True)
    assert "Semen analysis 2 of 3" in text.stdout
    fonts = subprocess.run(["/usr/bin/pdffonts", str(path)], capture_output=True, text=True)
    assert "EDC-Sans" in fonts.stdout  # crf.css @font-face: static/pdf/fonts via the fetcher
