from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from trial.services import protocol_load


class Command(BaseCommand):
    help = (
        "Load (or update) the protocol, sites, consent versions and visit schedule from a file. "
        "Every change is audited (who, old and new value, reason)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", default=str(settings.PROTOCOL_FILE))
        parser.add_argument(
            "--user",
            help="User name of the person loading it, for the audit trail (default: this "
            "program, named by host and command).",
        )
        parser.add_argument(
            "--reason",
            default="",
            help="Reason for the change, for the audit trail (default: 'Loaded from the "
            "protocol file <name>').",
        )

    def handle(self, *args, path, user=None, reason="", **options):
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user named {user!r}.")
        try:
            protocol = protocol_load(path=Path(path), user=actor, reason=reason)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {protocol}: {protocol.sites.count()} sites, "
                f"{protocol.visits.count()} visit definitions."
            )
        )
