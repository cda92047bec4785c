"""`manage.py check --database default`: is the application connected as a role that could
switch the audit trail off? (audit/dbroles.py). The production web, worker and beat run this
check before they start (docker-compose.yml), so a deployment that connects as the tables'
owner does not start."""

from django.core import checks
from django.db import connections

from .dbroles import connected_as_table_owner


@checks.register(checks.Tags.database)
def application_role_cannot_disable_triggers(app_configs, databases=None, **kwargs):
    problems = []
    for alias in databases or []:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        reason = connected_as_table_owner(connection)
        if reason:
            problems.append(
                checks.Warning(
                    f"Database '{alias}': {reason}, so it can disable or drop the audit triggers.",
                    hint="Connect the application as a role that owns no table (compose's "
                    "edc_app; README, 'Two database roles'). Only migrations run as the owner.",
                    id="audit.W001",
                )
            )
    return problems
