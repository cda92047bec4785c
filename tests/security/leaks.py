"""Reading every response as a person would (HTML and CSV as text, PDFs through pdftotext,
ZIPs member by member) and looking for identity values in it."""

import io
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path


def pdf_words(content: bytes) -> str:
    """The PDF's text, one space between words (as tests/exports/conftest.pdf_text)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.pdf"
        path.write_bytes(content)
        text = subprocess.run(
            ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
    return " ".join(text.replace("-\n", "-").split())


def texts_of(content: bytes, name: str = "") -> list[tuple[str, str]]:
    """(part, text) for a body: a ZIP gives one part per member, a PDF its words."""
    if content.startswith(b"PK\x03\x04"):
        archive = zipfile.ZipFile(io.BytesIO(content))
        parts = []
        for member in archive.namelist():
            parts.extend(texts_of(archive.read(member), f"{name}!{member}"))
        return parts
    if content.startswith(b"%PDF"):
        if b"%%EOF" not in content[-1024:] or len(content) < 200:
            return [(name, content.decode("latin-1"))]  # the world's stand-in scans
        return [(name, pdf_words(content))]
    text = content.decode("utf-8", errors="replace")
    # Both the text as written and as a person reads it in a page (entities decoded).
    return [(name, text), (f"{name} (unescaped)", unescape(text))]


@dataclass
class Leak:
    who: str
    url: str
    part: str
    value: str


@dataclass
class Scan:
    responses: int = 0
    bytes: int = 0
    leaks: list[Leak] = field(default_factory=list)
    urls: set = field(default_factory=set)

    def read(self, *, who: str, url: str, content: bytes, forbidden: list[str]) -> None:
        self.responses += 1
        self.bytes += len(content)
        self.urls.add(url)
        seen = set()
        for part, text in texts_of(content):
            for value in forbidden:
                if value in text and value not in seen:
                    seen.add(value)
                    self.leaks.append(Leak(who, url, part.strip(" ") or "body", value))

    def report(self) -> str:
        """One line per user and URL, with the values found there."""
        found = {}
        for leak in self.leaks:
            found.setdefault((leak.who, leak.url, leak.part), []).append(leak.value)
        return "\n".join(
            f"{who:16} {url}{'' if part == 'body' else ' ' + part}: {', '.join(values)}"
            for (who, url, part), values in found.items()
        )
