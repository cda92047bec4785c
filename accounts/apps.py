from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Sign-in"

    def ready(self):
        from . import signals  # noqa: F401  (completes a password-only sign-in when 2FA is off)
