"""Uploaded scans: what a file really is (from its bytes, never its name or declared type), and
an upload handler that stops reading a file at a size limit instead of spooling all of it."""

from dataclasses import dataclass

from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from PIL import Image

# How far from the end a PDF's last "%%EOF" may be (trailing newlines, scanner padding).
PDF_EOF_WINDOW = 1024


@dataclass(frozen=True)
class ScanType:
    content_type: str
    extension: str
    label: str  # in a sentence: "this file is {label}"
    pillow_format: str = ""


PDF = ScanType("application/pdf", ".pdf", "a PDF")
JPEG = ScanType("image/jpeg", ".jpg", "a JPEG image", "JPEG")
PNG = ScanType("image/png", ".png", "a PNG image", "PNG")
SCAN_TYPES = (PDF, JPEG, PNG)


class NotAScan(Exception):
    """The bytes are not a PDF, JPEG or PNG; `description` says what they are, for the user."""

    def __init__(self, description: str):
        super().__init__(description)
        self.description = description


# Things people (or attackers) upload instead, recognised to say so in the message.
_OTHER_SIGNATURES = (
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"PK\x03\x04", "a ZIP archive or Office document"),
    (b"\xd0\xcf\x11\xe0", "an old-style Office document"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a program"),
    (b"{\\rtf", "an RTF document"),
)


def _describe_other(head: bytes) -> str:
    if not head:
        return "empty"
    for signature, label in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return label
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1"):
        return "a HEIC photo"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text:
        return "an SVG image"
    if text.startswith((b"<!doctype html", b"<html")) or b"<script" in text or b"<body" in text:
        return "an HTML page"
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return "an XML or HTML document"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "not a PDF, JPEG or PNG (its content is not recognised)"
    return "a text file"


def _size(file) -> int:
    size = getattr(file, "size", None)
    if size is None:
        file.seek(0, 2)
        size = file.tell()
    return size


def identify_scan(file) -> ScanType:
    """The type of a PDF, JPEG or PNG file, checked from its bytes: the magic number and, for
    images, that Pillow can parse and verify it; for a PDF, the header and a final %%EOF.
    Raises NotAScan otherwise. Leaves the file at position 0."""
    try:
        file.seek(0)
        head = file.read(2048)
        if head.startswith(b"%PDF-"):
            size = _size(file)
            file.seek(max(0, size - PDF_EOF_WINDOW))
            tail = file.read(PDF_EOF_WINDOW)
            if not head[5:8].replace(b".", b"", 1).isdigit() or b"%%EOF" not in tail:
                raise NotAScan("a damaged or incomplete PDF")
            return PDF
        if head.startswith(b"\xff\xd8\xff"):
            expected = JPEG
        elif head.startswith(b"\x89PNG\r\n\x1a\n"):
            expected = PNG
        else:
            raise NotAScan(_describe_other(head))
        file.seek(0)
        damaged = NotAScan(f"a damaged or incomplete {expected.pillow_format} image")
        try:
            with Image.open(file, formats=[expected.pillow_format]) as image:
                image.verify()
        except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, bombs...)
            raise damaged from exc
        return expected
    finally:
        file.seek(0)


def scan_type(file) -> ScanType | None:
    """identify_scan without the reason: None when the bytes are not a PDF, JPEG or PNG."""
    try:
        return identify_scan(file)
    except NotAScan:
        return None


class SizeLimitUploadHandler(FileUploadHandler):
    """First in the chain: passes chunks on until a file passes `max_bytes`, then drops that
    file (SkipFile: the rest of its part is read and discarded, never stored; the form's other
    fields are still parsed, so what the user typed comes back). `refused` lists the field
    names of the files dropped, for the view to tell the user."""

    def __init__(self, request=None, *, max_bytes: int):
        super().__init__(request)
        self.max_bytes = max_bytes
        self.refused: list[str] = []
        self.received = 0

    def new_file(self, field_name, *args, **kwargs):
        super().new_file(field_name, *args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received = start + len(raw_data)
        if self.received > self.max_bytes:
            self.refused.append(self.field_name)
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handlers (memory or temporary file) build the file
