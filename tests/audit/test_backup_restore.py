"""Backups that restore (issue 10): the real deploy/backup/backup.sh dumps a small study built
through the services, the real restore-drill.sh restores it into an empty database and
`manage.py verify_restore` finds every table, audit row, signature and file as they were.
A copy changed behind the application's back fails the verification, naming what changed.

Transactional: the study is committed, so pg_dump (another connection) sees it."""

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from audit.models import AuditEntry
from core import crf
from exports import services as export_services
from exports.models import PdfJob
from followup.services import adverse_event_create
from monitoring.selectors import signature_status
from patients import services as patient_services
from trial.selectors import current_consent_version

from ..audit.test_part11 import _sign
from ..conftest import enrol
from ..factories import complete_screening
from ..followup.factories import ae_values

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SCRIPTS = settings.BASE_DIR / "deploy" / "backup"
SCAN = b"%PDF-1.4 signed consent scan of BEN-002"


def _url(name: str, *, user: str | None = None) -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return (
        f"postgres://{user or db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{name}"
    )


def _run(command: list, input: str | None = None, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        input=input,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _psql(database: str, sql: str) -> str:
    command = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", _url(database)]
    result = _run(command, input=sql)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _behind_every_guard(database: str, table: str, update: str) -> None:
    """Change rows of the restored copy as its owner could, with the table's triggers (the
    audit capture, the append-only rule) switched off for that one change, then on again."""
    _psql(
        database,
        f"BEGIN; ALTER TABLE {table} DISABLE TRIGGER USER; {update}; "
        f"ALTER TABLE {table} ENABLE TRIGGER USER; COMMIT;",
    )


@pytest.fixture
def drill_database():
    """A scratch database name of this test database's own (one per pytest-xdist process),
    dropped afterwards whatever happened."""
    name = f"{connection.settings_dict['NAME']}_drill"
    yield name
    _psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def study(rf, andrologist, consented_patient, screening_visit, site):
    """One patient screened and signed twice (the visit signature holds; the casebook one is
    invalidated, legitimately, by an adverse event reported after it), another with a scanned
    consent, and a built form PDF: rows in most tables, audit rows, two kinds of media."""
    complete_screening(screening_visit, andrologist)
    visit_signature = _sign(rf, andrologist, consented_patient, screening_visit)
    casebook = _sign(rf, andrologist, consented_patient)
    adverse_event_create(
        patient=consented_patient,
        data=ae_values(onset=timezone.localdate()),
        user=andrologist,
    )
    second = enrol(site, andrologist, name="Scanned Consent")
    consent = patient_services.consent_record(
        patient=second,
        user=andrologist,
        obtained_by=andrologist,
        consent_version=current_consent_version(protocol=site.protocol),
        signed_at=timezone.now() - timezone.timedelta(days=2),
        document=SimpleUploadedFile("consent.pdf", SCAN, content_type="application/pdf"),
    )
    # The worker's part is done here, by the same service the task calls.
    with mock.patch("exports.tasks.pdf_job_run.delay"):
        job, _ = export_services.pdf_job_request(
            user=andrologist,
            kind=PdfJob.Kind.FORM,
            patient=consented_patient,
            visit=screening_visit,
            form_code="examination",
            form_sequence=1,
        )
    export_services.pdf_job_build(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == PdfJob.Status.DONE and job.file
    assert signature_status(visit_signature) == "valid"
    assert signature_status(casebook) == "invalidated"
    return {
        "consent": consent,
        "job": job,
        "visit_signature": visit_signature,
        "casebook_signature": casebook,
    }


def _backup(backup_dir: Path) -> Path:
    result = _run(
        ["bash", str(SCRIPTS / "backup.sh")],
        DATABASE_URL=_url(connection.settings_dict["NAME"]),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        BACKUP_DIR=str(backup_dir),
        BACKUP_KEEP_DAYS="14",
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def _drill(backup_dir: Path, drill_database: str, *args) -> subprocess.CompletedProcess:
    return _run(
        ["bash", str(SCRIPTS / "restore-drill.sh"), *args],
        DATABASE_URL=_url(connection.settings_dict["NAME"]),
        BACKUP_DIR=str(backup_dir),
        DRILL_DATABASE=drill_database,
        PYTHON=sys.executable,
    )


def _verify(backup: Path, drill_database: str, media: Path) -> subprocess.CompletedProcess:
    return _run(
        [sys.executable, "manage.py", "verify_restore", str(backup), "--media-root", str(media)],
        DATABASE_URL=_url(drill_database),
    )


def _kept_copy(tmp_path, drill_database) -> tuple[Path, Path]:
    """Back up, restore with --keep, and check the untouched copy passes: (backup, media)."""
    backup = _backup(tmp_path / "backups")
    media = tmp_path / "restored-media"
    drill = _run(
        ["bash", str(SCRIPTS / "restore-drill.sh"), "--keep", backup.name],
        DATABASE_URL=_url(connection.settings_dict["NAME"]),
        BACKUP_DIR=str(tmp_path / "backups"),
        DRILL_DATABASE=drill_database,
        DRILL_MEDIA=str(media),
        PYTHON=sys.executable,
    )
    assert drill.returncode == 0, drill.stdout + drill.stderr
    return backup, media


def test_the_nightly_backup_restores_into_an_empty_database_and_verifies(
    study, tmp_path, drill_database
):
    backups = tmp_path / "backups"
    (backups / "20000101T000000Z").mkdir(parents=True)  # a backup long past its 14 days
    audit_rows = AuditEntry.objects.count()
    backup = _backup(backups)

    assert sorted(p.name for p in backup.iterdir()) == [
        "SHA256SUMS",
        "db.dump",
        "manifest.json",
        "media.tar.gz",
    ]
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["audit_trail"]["rows"] == audit_rows
    assert manifest["tables"]["monitoring_signature"]["rows"] == 2
    assert not (backups / "20000101T000000Z").exists()

    drill = _drill(backups, drill_database)
    report = drill.stdout
    assert drill.returncode == 0, report + drill.stderr
    assert f"backup {backup}" in report
    assert f"PASS  audit trail: {audit_rows} rows" in report and "none added" in report
    assert "PASS  signatures: 2: 1 valid, 0 voided by an unlock, 1 invalidated" in report
    casebook = study["casebook_signature"]
    assert f"(#{casebook.pk}): invalidated before the backup; the audit trail holds" in report
    assert "PASS  media: the 2 file(s) the database names are all in" in report
    assert "PASS  triggers:" in report and "PASS  sequences:" in report
    assert f"PASS  audit chain: INTACT: {audit_rows} rows" in report
    assert report.splitlines()[-1].startswith("restore drill: RESULT: PASS in ")
    # The scratch database is gone afterwards.
    exists = f"SELECT count(*) FROM pg_database WHERE datname = '{drill_database}'"
    assert _psql("postgres", exists) == "0"


def test_a_changed_audit_row_in_the_restored_copy_fails_the_verification(
    study, tmp_path, drill_database
):
    backup, media = _kept_copy(tmp_path, drill_database)
    entry = AuditEntry.objects.filter(field_name="weight_kg").first()
    _behind_every_guard(
        drill_database,
        "audit_auditentry",
        f"UPDATE audit_auditentry SET new_value = '59.00' WHERE id = {entry.pk}",
    )
    result = _verify(backup, drill_database, media)
    assert result.returncode != 0
    assert "FAIL  tables: 1 of" in result.stdout
    assert "audit_auditentry: " in result.stdout and "their contents differ" in result.stdout
    assert "FAIL  audit trail: differs from the backup" in result.stdout
    # The chain names the row itself (audit/chain.py).
    assert "FAIL  audit chain: BROKEN in 1 chain(s)" in result.stdout
    assert f"(row #{entry.pk}): altered content" in result.stdout
    assert "RESULT: FAIL" in result.stdout


def test_a_signed_value_changed_in_the_restored_copy_fails_the_verification(
    study, tmp_path, drill_database
):
    backup, media = _kept_copy(tmp_path, drill_database)
    table = crf.get("examination").model._meta.db_table
    _behind_every_guard(drill_database, table, f"UPDATE {table} SET weight_kg = weight_kg + 1")
    result = _verify(backup, drill_database, media)
    assert result.returncode != 0
    signature = study["visit_signature"]
    assert "FAIL  signatures: 1 of 2 do not verify" in result.stdout
    assert f"(#{signature.pk}): its SHA-256 no longer matches the data it covers" in result.stdout
    assert f"{table}: 1 rows as at backup, but their contents differ" in result.stdout


def test_a_consent_scan_missing_from_the_restored_media_fails_the_verification(
    study, tmp_path, drill_database
):
    backup, media = _kept_copy(tmp_path, drill_database)
    name = study["consent"].document.name
    assert (media / name).read_bytes() == SCAN
    (media / name).unlink()
    result = _verify(backup, drill_database, media)
    assert result.returncode != 0
    assert "FAIL  media: 1 of 2 file(s) the database names are missing" in result.stdout
    assert f"consent scan of BEN-002 (consent #{study['consent'].pk}): {name}" in result.stdout
