from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from trial.services import protocol_load


class Command(BaseCommand):
    help = "Load (or update) the protocol, sites, consent versions and visit schedule from a file."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", default=str(settings.PROTOCOL_FILE))

    def handle(self, *args, path, **options):
        protocol = protocol_load(path=Path(path))
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {protocol}: {protocol.sites.count()} sites, "
                f"{protocol.visits.count()} visit definitions."
            )
        )
