from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Synthetic demo data (`manage.py seed_demo`): written through every app's services, so
    it sits at the top of the layers and no clinical app carries demo code."""

    name = "demo"
    verbose_name = "Demo data"
