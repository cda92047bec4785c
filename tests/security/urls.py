"""Every URL pattern of the project, from the resolver, and its kwargs filled with real objects
of the world: the user's own site ("own") or the other site ("other")."""

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

from core.roles import Role

from .world import World


@dataclass(frozen=True)
class Pattern:
    name: str  # "namespace:name" as the table names it
    route: str  # "patients/<uuid:patient_uuid>/" (for messages)
    kwargs: tuple[str, ...]


def url_patterns(resolver=None, prefix="", namespace="") -> list[Pattern]:
    """Walk the resolver, nested includes too; unnamed patterns are named by their route."""
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found.extend(url_patterns(entry, route, inner))
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else f"{namespace}<{route}>"
            kwargs = tuple(re.findall(r"<(?:\w+:)?(\w+)>", route))
            found.append(Pattern(name=name, route=route, kwargs=kwargs))
    return found


def is_admin(pattern: Pattern) -> bool:
    return pattern.name.startswith("admin:")


# What fills each kwarg of the app's URLs: (world side, user) -> value. The side is the
# user's own site or the other site; a job is the requester's own (jobs are per user), of
# the other site's user of the same role for "other".
FILL = {
    "patient_uuid": lambda side, user: side.patient.uuid,
    "visit_uuid": lambda side, user: side.screening.uuid,
    "code": lambda side, user: "hormones",
    "sequence": lambda side, user: 1,
    "consent_uuid": lambda side, user: side.consent.uuid,
    "event_uuid": lambda side, user: side.adverse_event.uuid,
    "medication_uuid": lambda side, user: side.medication.uuid,
    "query_uuid": lambda side, user: side.query.uuid,
    "signature_uuid": lambda side, user: side.signature.uuid,
    "model_label": lambda side, user: "labs.hormoneprofile",
    "record_uuid": lambda side, user: side.hormones.uuid,
    "username": lambda side, user: side.users[Role.LAB_TECHNICIAN].username,
}


def job_for(world: World, variant: str, user):
    """The user's own finished job on their side; on the other side, the job of the other
    site's user of the same role (the admin has one at each site)."""
    side = world.side(variant)
    if user.pk in side.jobs:
        return side.jobs[user.pk]
    if variant == "own":
        # A role without jobs of its own (lab technician): its site's coordinator's job.
        return side.jobs[side.users[Role.COORDINATOR].pk]
    role = next(iter(user.groups.values_list("name", flat=True)), Role.COORDINATOR)
    peer = side.users.get(role) or side.users[Role.COORDINATOR]
    return side.jobs.get(peer.pk) or side.jobs[side.users[Role.COORDINATOR].pk]


def fill(pattern: Pattern, world: World, variant: str, user) -> dict:
    side = world.side(variant)
    values = {}
    for kwarg in pattern.kwargs:
        if kwarg == "job_uuid":
            values[kwarg] = job_for(world, variant, user).uuid
        elif kwarg == "version_uuid":
            values[kwarg] = world.consent_version.uuid
        else:
            filler = FILL.get(kwarg)
            if filler is None:
                raise KeyError(f"{pattern.name}: no object for <{kwarg}>: add it to FILL")
            values[kwarg] = filler(side, user)
    return values
