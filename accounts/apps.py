from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Sign-in"

    def ready(self):
        from . import signals  # completes a password-only sign-in when 2FA is off

        # The administrators are e-mailed when an account locks.
        signals.connect_axes()
