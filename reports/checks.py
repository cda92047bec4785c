"""Start-up check of the statistical analysis plans shipped beside the protocol file
(reports/plan.py): each must read, be valid against the protocol file, and have its own
plan_id."""

from django.conf import settings
from django.core import checks

from trial import protocol_file


@checks.register()
def analysis_plans_are_valid(app_configs, **kwargs):
    from . import plan  # here, not at start-up: the plan imports SciPy (reports.methods)

    path = settings.PROTOCOL_FILE
    try:
        protocol = protocol_file.read(path)
    except (OSError, ValueError):
        protocol = None  # trial.E001 says so; the plans are still checked on their own
    found = []
    seen: dict[str, str] = {}
    for plan_path in plan.plan_files(path):
        try:
            data = plan.read(plan_path)
        except (OSError, ValueError) as exc:
            found.append(
                checks.Error(f"Cannot read analysis plan {plan_path}: {exc}", id="reports.E001")
            )
            continue
        errors, warnings = plan.problems(data, protocol=protocol)
        found += [checks.Error(f"{plan_path.name}: {e}", id="reports.E002") for e in errors]
        found += [checks.Warning(f"{plan_path.name}: {w}", id="reports.W001") for w in warnings]
        plan_id = data.get("plan_id") if isinstance(data, dict) else None
        if plan_id in seen:
            found.append(
                checks.Error(
                    f"{plan_path.name}: plan_id {plan_id!r} is also the id of {seen[plan_id]}",
                    id="reports.E003",
                )
            )
        elif plan_id:
            seen[plan_id] = plan_path.name
    return found
