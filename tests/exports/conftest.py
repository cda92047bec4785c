"""A patient with a full screening, one correction, one flagged value and a month-4 visit;
helpers that read PDFs the way a person would (text, and a picture of page 1)."""

import re
import subprocess
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record_change, snapshot
from config.celery_app import app
from followup.services import end_of_study_visit_open
from patients.services import crf_save

from ..factories import complete_screening, save_crf, today_minus
from ..followup.factories import procedure_day, save, visit


def void_record(record, user, reason):
    """As a void service does it: keep the row, stamp it, write the audit trail."""
    before = snapshot(record)
    record.voided_at = timezone.now()
    record.void_reason = reason
    record.save()
    audit_record_change(
        instance=record,
        before=before,
        user=user,
        patient=record.visit.patient,
        reason=reason,
        action=AuditEntry.Action.VOID,
    )


@pytest.fixture
def full_patient(consented_patient, screening_visit, andrologist):
    """BEN-001: screening complete; semen 2 flagged (abstinence 12 days); FSH corrected from
    22.5 to 24.1 with a reason; procedure day; month 4 done with sperm in the pellet; end of
    study recorded. Every registered CRF has a record."""
    complete_screening(screening_visit, andrologist)
    semen = screening_visit.labs_semenanalysis_set.get(sequence=2)
    semen.abstinence_days = 12
    crf_save(record=semen, user=andrologist, reason="Lab sheet re-read: 12 days")
    hormones = screening_visit.labs_hormoneprofile_set.get()
    hormones.fsh = Decimal("24.1")
    crf_save(record=hormones, user=andrologist, reason="Transcription error, lab report")
    # Procedure day (creates M4..M12), then month 4 and the end of study: every CRF type.
    procedure_day(consented_patient, andrologist, on=today_minus(5))
    m4 = visit(consented_patient, "M4")
    save("followup_visit", m4, andrologist, on=today_minus(2))
    save_crf(
        "semen_analysis",
        m4,
        andrologist,
        assessment_date=today_minus(2),
        sperm_seen="PELLET",
        concentration=Decimal("0.10"),
    )
    save_crf("hormones", m4, andrologist, assessment_date=today_minus(2), fsh=Decimal("18.2"))
    eos = end_of_study_visit_open(patient=consented_patient, user=andrologist)
    save("end_of_study", eos, andrologist, on=today_minus(1))
    return consented_patient


def pdf_text(content: bytes, tmp_path: Path) -> str:
    """The words of the PDF in reading order, one space between them (a cell's text may
    wrap over lines; a word wrapped after its hyphen is joined again)."""
    path = tmp_path / "doc.pdf"
    path.write_bytes(content)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return " ".join(text.replace("-\n", "-").split())


def pdf_page_count(content: bytes, tmp_path: Path) -> int:
    path = tmp_path / "count.pdf"
    path.write_bytes(content)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return int(
        next(line for line in info.stdout.splitlines() if line.startswith("Pages:")).split()[1]
    )


def first_page_png(content: bytes, tmp_path: Path) -> Path:
    path = tmp_path / "page.pdf"
    path.write_bytes(content)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
        check=True,
    )
    return next(tmp_path.glob("page*.png"))


@contextmanager
def celery_conf(**values):
    """Celery settings changed for a block, under both their names: celery 5.6 reads the
    Django setting (CELERY_TASK_ALWAYS_EAGER) before the same one set on app.conf
    (task_always_eager), so setting only the latter does nothing there."""
    names = {name: f"CELERY_{name.upper()}" for name in values}
    previous = {name: getattr(app.conf, name) for name in names}
    previous |= {django_name: app.conf.get(django_name) for django_name in names.values()}
    app.conf.update({key: values[name] for name, django in names.items() for key in (name, django)})
    try:
        yield
    finally:
        app.conf.update(previous)


@pytest.fixture
def eager_celery():
    """Run tasks in-process even when REDIS_URL points at a real broker (CI)."""
    with celery_conf(task_always_eager=True):
        yield


def ask_again_form(html: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of a job page's "Ask for it again" form, as a browser
    would post them."""
    form = re.search(r"<form[^>]*>(?:(?!</form>).)*job-ask-again.*?</form>", html, re.S).group(0)
    action = re.match(r'<form[^>]*action="([^"]+)"', form).group(1)
    return action, dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
