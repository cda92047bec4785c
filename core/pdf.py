"""The one PDF renderer: render_to_string -> WeasyPrint, with the static files and fonts the
templates link read from disk, never over the network (CONVENTIONS, PDFs). The CRF PDFs
(exports.pdf) and the results report (reports.exports) both render here.

WeasyPrint (Pango) is imported when a PDF is asked for, not when this module is."""

import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils._os import safe_join

# Relative and /static/ URLs in the PDF templates resolve against this made-up origin; the
# URL fetcher below answers only for the app's own static files.
PDF_BASE_URL = "https://edc.invalid/"


def static_url_fetcher(url: str, timeout: int = 10, ssl_context=None) -> dict:
    """WeasyPrint URL fetcher: STATIC_URL paths come from the static files on disk (the
    finders, or STATIC_ROOT after collectstatic); anything else is refused (ValueError)."""
    path = unquote(urlsplit(url).path)
    prefix = urlsplit(settings.STATIC_URL).path
    if path.startswith(prefix):
        relative = path[len(prefix) :]
        found = finders.find(relative)
        if not found and settings.STATIC_ROOT:
            candidate = Path(safe_join(str(settings.STATIC_ROOT), relative))
            found = str(candidate) if candidate.is_file() else None
        if found:
            mime_type, _ = mimetypes.guess_type(found)
            return {
                "file_obj": open(found, "rb"),  # noqa: SIM115 (WeasyPrint closes it)
                "mime_type": mime_type,
                "redirected_url": url,
            }
    raise ValueError(f"Only static files are available to the PDF renderer, not {url}")


def html_to_pdf(
    html: str, *, base_url: str = PDF_BASE_URL, url_fetcher=static_url_fetcher
) -> bytes:
    """The PDF of an HTML page; `@font-face` fonts are loaded through the fetcher."""
    import weasyprint  # heavy import (Pango): only when a PDF is asked for
    from weasyprint.text.fonts import FontConfiguration

    return weasyprint.HTML(string=html, base_url=base_url, url_fetcher=url_fetcher).write_pdf(
        font_config=FontConfiguration()
    )


def render_pdf(*, template_name: str, context: dict, **options) -> bytes:
    """The PDF of a template; `options` go to html_to_pdf (base_url, url_fetcher)."""
    return html_to_pdf(render_to_string(template_name, context), **options)
