"""Every dataset for the statistician in one ZIP, with a manifest giving each file's number of
rows, size and SHA-256: a transfer the receiver can reconcile and check for corruption
(ICH E6(R3) 4.2.5, STANDARDS P11-22). The files are the same as the single downloads."""

import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from core import crf
from core.csv import Writer, csv_lines
from trial.models import Protocol
from trial.selectors import sites_for_user

from .datasets import (
    adverse_event_rows,
    analysis_rows,
    concomitant_medication_rows,
    dictionary_rows,
    form_rows,
)
from .odm import odm_chunks


@dataclass(frozen=True)
class DatasetFile:
    name: str
    chunks: Iterator[str]
    # CSV chunks are one row each (csv_lines); the ODM file is counted in bytes only.
    is_csv: bool = True


@dataclass(frozen=True)
class ManifestLine:
    name: str
    rows: int | None  # data rows, header excluded
    size: int
    sha256: str


MANIFEST_COLUMNS = ["file", "rows", "bytes", "sha256"]


def dataset_files(*, user, protocol: Protocol, now: datetime) -> Iterator[DatasetFile]:
    yield DatasetFile("analysis.csv", csv_lines(analysis_rows(user=user, protocol=protocol)))
    yield DatasetFile("adverse_events.csv", csv_lines(adverse_event_rows(user=user)))
    yield DatasetFile(
        "concomitant_medications.csv", csv_lines(concomitant_medication_rows(user=user))
    )
    yield DatasetFile("data_dictionary.csv", csv_lines(dictionary_rows(protocol=protocol)))
    for definition in crf.all_definitions():
        yield DatasetFile(
            f"forms/{definition.code}.csv", csv_lines(form_rows(user=user, code=definition.code))
        )
    yield DatasetFile("odm.xml", odm_chunks(user=user, protocol=protocol, now=now), is_csv=False)


def _write_member(archive: zipfile.ZipFile, dataset: DatasetFile) -> ManifestLine:
    digest, size, chunks = hashlib.sha256(), 0, 0
    with archive.open(dataset.name, "w") as member:
        for chunk in dataset.chunks:
            data = chunk.encode("utf-8")
            digest.update(data)
            size += len(data)
            chunks += 1
            member.write(data)
    rows = max(chunks - 1, 0) if dataset.is_csv else None
    return ManifestLine(dataset.name, rows, size, digest.hexdigest())


def _readme(*, user, protocol: Protocol, now: datetime, lines: list[ManifestLine]) -> str:
    sites = ", ".join(site.code for site in sites_for_user(user=user))
    return "\n".join(
        [
            f"{protocol.registry_id} {protocol.short_name} v{protocol.version}: datasets",
            f"Generated {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} by {user.get_username()}",
            f"Sites covered: {sites or 'none'}",
            "No file holds names, phone numbers, national ids or addresses.",
            f"{len(lines)} files; manifest.csv gives each one's data rows (header excluded),",
            "bytes and SHA-256. Check them with: sha256sum <file>",
            "",
        ]
    )


def write_bundle(target: BinaryIO, *, user, protocol: Protocol, now: datetime) -> list:
    """Write the ZIP into `target` (a file: members are streamed, memory stays flat)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        lines = [
            _write_member(archive, dataset)
            for dataset in dataset_files(user=user, protocol=protocol, now=now)
        ]
        manifest = io.StringIO()
        writer = Writer(manifest)
        writer.writerow(MANIFEST_COLUMNS)
        for line in lines:
            writer.writerow(
                [line.name, "" if line.rows is None else line.rows, line.size, line.sha256]
            )
        archive.writestr("manifest.csv", manifest.getvalue())
        archive.writestr("README.txt", _readme(user=user, protocol=protocol, now=now, lines=lines))
    return lines
