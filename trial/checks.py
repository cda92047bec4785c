from django.conf import settings
from django.core import checks

from . import protocol_file


@checks.register()
def protocol_file_is_valid(app_configs, **kwargs):
    path = settings.PROTOCOL_FILE
    try:
        data = protocol_file.read(path)
    except (OSError, ValueError) as exc:
        return [checks.Error(f"Cannot read protocol file {path}: {exc}", id="trial.E001")]
    errors, warnings = protocol_file.problems(data)
    return [checks.Error(f"{path.name}: {e}", id="trial.E002") for e in errors] + [
        checks.Warning(f"{path.name}: {w}", id="trial.W001") for w in warnings
    ]
