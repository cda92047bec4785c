"""The current two-factor code of a demo account (seed_demo's authenticators only)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import DEMO_AUTHENTICATOR_NAME, secret_base32, usable_code


class Command(BaseCommand):
    help = "Print the current 6-digit sign-in code of a demo account enrolled by seed_demo."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--key",
            action="store_true",
            help="Also print the key and set-up link, to add the account to an authenticator app.",
        )

    def handle(self, *args, username, key=False, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no account {username!r}.")
        # Never for a real authenticator: only the ones seed_demo made.
        device = TOTPDevice.objects.filter(
            user=user, confirmed=True, name=DEMO_AUTHENTICATOR_NAME
        ).first()
        if device is None:
            raise CommandError(
                f"{username} has no demo authenticator (only seed_demo's demo accounts do)."
            )
        self.stdout.write(usable_code(device))
        if key:
            self.stdout.write(f"key: {secret_base32(device)}\nlink: {device.config_url}")
        if options["verbosity"] > 1:
            self.stdout.write("A code works once, for about 30 seconds.")
