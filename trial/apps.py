from django.apps import AppConfig


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = "Trial set-up"

    def ready(self):
        from . import checks  # noqa: F401  (registers the protocol file check)
