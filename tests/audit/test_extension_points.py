"""The extension points through which audit serves the app below it (trial, core.trail) and
is served by the apps above it (audit.integrity: monitoring's check, every app's files)."""

from datetime import date

import pytest
from django.core.exceptions import ImproperlyConfigured

from audit import integrity, services
from audit.models import AuditEntry
from core import trail
from monitoring.integrity import signature_check
from patients.integrity import status_check
from trial.models import ConsentVersion
from trial.services import study_config_save


def test_trial_saves_its_configuration_through_the_audit_trail(protocol, andrologist):
    version = ConsentVersion(protocol=protocol, version="9.9", effective_date=date(2026, 1, 5))
    study_config_save(version, user=andrologist, reason="New version approved")
    rows = AuditEntry.objects.filter(object_id=version.pk, field_name="version")
    assert [(r.new_value, r.reason, r.user_name) for r in rows] == [
        ("9.9", "New version approved", "alice")
    ]


def test_without_the_audit_app_a_configuration_write_is_refused(monkeypatch):
    monkeypatch.setattr(trail, "_writers", {})
    with pytest.raises(ImproperlyConfigured, match="audit app"):
        trail.trail_save(object(), user=None)


def test_audit_registers_its_writers_and_monitoring_its_restore_check():
    assert trail._writers == {"save": services.audited_save, "delete": services.audited_delete}
    # patients (the stored stage and flags match the records), then monitoring (signatures).
    assert integrity._registered_checks == [status_check, signature_check]


def test_the_restore_check_lists_every_file_the_database_names(protocol, andrologist):
    """Found from each model's FileFields: a new model's files are checked with no change."""
    version = ConsentVersion(
        protocol=protocol,
        version="9.9",
        effective_date=date(2026, 1, 5),
        document="consent-versions/NOA-MSC/9.9/form.pdf",
    )
    study_config_save(version, user=andrologist, reason="New version approved")
    assert integrity.media_files_named() == [
        (
            f"approved document of consent version #{version.pk}",
            "consent-versions/NOA-MSC/9.9/form.pdf",
        )
    ]
