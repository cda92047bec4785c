"""Check a restored copy of the database against its backup (audit/integrity.py).

    DATABASE_URL=postgres://.../edc_restore_drill \\
        python manage.py verify_restore /backups/20260311T010000Z --media-root /tmp/drill/media

Prints a PASS/FAIL line per check and exits non-zero when any fails. Read only. Run by
deploy/backup/restore-drill.sh; README: Backups and restore."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.integrity import restore_verify


class Command(BaseCommand):
    # Read only and about data: the system checks (seconds) add nothing here.
    requires_system_checks = []

    help = (
        "Verify a restored database against the manifest of its backup: row counts and "
        "contents of every table, the audit trail, the triggers, the sequences, every "
        "e-signature, and the media files the database names."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "backup", help="the backup folder (with manifest.json), or the manifest file itself"
        )
        parser.add_argument(
            "--media-root",
            default=None,
            help="where the backup's media files were restored (default: MEDIA_ROOT)",
        )

    def handle(self, *args, backup, media_root, **options):
        path = Path(backup)
        manifest_path = path / "manifest.json" if path.is_dir() else path
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as error:
            raise CommandError(
                f"Cannot read the backup manifest {manifest_path}: {error}"
            ) from error
        try:
            report = restore_verify(
                manifest=manifest, media_root=Path(media_root or settings.MEDIA_ROOT)
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        for line in report.lines():
            self.stdout.write(line)
        if not report.passed:
            raise CommandError("The restored copy does not match its backup (FAIL above).")
