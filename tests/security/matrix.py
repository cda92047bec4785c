"""Running the access matrix: one request per (URL, role, site, method), each in a savepoint
rolled back after it, so an allowed POST never changes the world the next case sees."""

import logging
from contextlib import contextmanager
from dataclasses import dataclass

from django.apps import apps
from django.core.signals import got_request_exception
from django.db import transaction
from django.test import Client
from django.urls import NoReverseMatch, reverse

from .access_table import Access
from .urls import Pattern, fill
from .world import World

LOGIN_PAGES = ("/accounts/login/", "/admin/login/")


@dataclass
class Case:
    url_name: str
    who: str  # role, or "anonymous"
    variant: str  # "own", "other" or "-" (no site in the URL)
    method: str
    url: str
    status: int
    expected: str
    error: str = ""

    def row(self) -> str:
        error = f"  {self.error}" if self.error else ""
        return (
            f"{self.url_name:38} {self.who:15} {self.variant:5} {self.method:4} "
            f"got {self.status} expected {self.expected}  {self.url}{error}"
        )


class Recorder:
    """The exception behind a 500, for the report (the client does not raise it)."""

    def __init__(self):
        self.last = ""
        got_request_exception.connect(self._caught)

    def _caught(self, sender, request=None, **kwargs):
        import sys

        exc = sys.exc_info()[1]
        self.last = f"{type(exc).__name__}: {exc}" if exc else "exception"

    def close(self):
        got_request_exception.disconnect(self._caught)


def client_for(user) -> Client:
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def send(client: Client, method: str, url: str, data: dict | None = None):
    """One request in a savepoint that is rolled back: nothing it writes stays."""
    with transaction.atomic():
        response = client.post(url, data or {}) if method == "POST" else client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)  # a streamed body runs its queries now
        transaction.set_rollback(True)
    return response


def to_login(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(LOGIN_PAGES)


def judge(access: Access, role: str | None, variant: str, method: str, sees_all: bool):
    """(description, predicate on the response) of what the table promises."""
    allowed = access.get if method == "GET" else access.post
    if role is None:
        if access.public:
            return "a page (public)", lambda r: r.status_code < 400 or r.status_code == 405
        return "302 to login", to_login
    if allowed is None:
        return "403/404/405 (method not served)", lambda r: r.status_code in (403, 404, 405)
    if role in allowed:
        if access.scoped and variant == "other" and not sees_all:
            return "404 (other site)", lambda r: r.status_code == 404
        if method == "GET" and access.sends_on_when_signed_in:
            return "302 on (signed in)", lambda r: r.status_code == 302 and not to_login(r)
        if method == "GET":
            return "200", lambda r: r.status_code == 200
        if access.ends_session:
            return "302 (signed out)", lambda r: r.status_code == 302
        return "200/302 not to login", lambda r: r.status_code in (200, 302) and not to_login(r)
    if access.scoped and variant == "other" and not sees_all:
        return "403/404 (role, other site)", lambda r: r.status_code in (403, 404)
    return f"{access.denied} (role)", lambda r: r.status_code == access.denied


@contextmanager
def quiet():
    """Hundreds of 403/404/405 are the point here: not worth a log line each."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def run_app_matrix(patterns: list[Pattern], table: dict, world: World, roles, recorder):
    """Every pattern x (every role x own/other site, anonymous) x GET/POST."""
    cases, failures = [], []
    who = [(role, world.user(role)) for role in roles] + [("anonymous", None)]
    for method in ("GET", "POST"):  # POSTs last: anything they leave behind comes after
        for role, user in who:
            client = client_for(user)
            for pattern in patterns:
                access = table[pattern.name]
                variants = ("own", "other") if access.scoped and user is not None else ("-",)
                for variant in variants:
                    side = "own" if variant == "-" else variant
                    kwargs = fill(pattern, world, side, user or world.admin)
                    url = reverse(pattern.name, kwargs=kwargs)
                    data = {
                        key: value.format(
                            patient=world.side(side).patient.uuid,
                            site=world.side(side).site.uuid,
                            site_code=world.side(side).site.code,
                        )
                        for key, value in access.post_body.items()
                    }
                    recorder.last = ""
                    response = send(client, method, url, data)
                    expected, ok = judge(
                        access,
                        None if user is None else role,
                        variant,
                        method,
                        sees_all=bool(user and user.is_superuser),
                    )
                    case = Case(
                        pattern.name, role, variant, method, url, response.status_code, expected
                    )
                    cases.append(case)
                    if response.status_code >= 500 or not ok(response):
                        case.error = recorder.last
                        failures.append(case)
                    if pattern.name == "logout" and user is not None:
                        client.force_login(user)  # the probe logged it out
    return cases, failures


def admin_url(pattern: Pattern) -> str | None:
    """The admin URL with a real object for object_id / app_label (None: nothing to fill,
    e.g. the catch-all and the view-on-site shortcut)."""
    kwargs = {}
    name = pattern.name.split(":", 1)[1]
    if name.startswith("<"):
        return None  # unnamed: the admin's redirects to the change page and its catch-all
    for kwarg in pattern.kwargs:
        if kwarg == "app_label":
            kwargs[kwarg] = name.split("_", 2)[-1] if name.startswith("app_list") else "audit"
        elif kwarg == "object_id":
            app_label, _, rest = name.partition("_")
            model = next(
                (
                    m
                    for m in apps.get_app_config(app_label).get_models()
                    if rest.startswith(m._meta.model_name + "_")
                ),
                None,
            )
            obj = model.objects.order_by("pk").first() if model else None
            if obj is None:
                return None
            kwargs[kwarg] = obj.pk
        else:
            return None
    try:
        return reverse(pattern.name, kwargs=kwargs)
    except NoReverseMatch:
        return None


def run_admin_matrix(patterns: list[Pattern], world: World, roles, recorder):
    """The Django admin is for the superuser only: every other role (and anonymous) is sent
    to a login page on every admin URL, GET or POST; the admin is never given a 500."""
    cases, failures = [], []
    urls = [(p, admin_url(p)) for p in patterns]
    urls = [(p, u) for p, u in urls if u is not None and p.name not in ("admin:login",)]
    for role in [*roles, "anonymous"]:
        user = None if role == "anonymous" else world.user(role)
        client = client_for(user)
        for method in ("GET", "POST"):
            if user is not None and user.is_superuser and method == "POST":
                continue  # the admin's own forms are the admin's business
            for pattern, url in urls:
                recorder.last = ""
                response = send(client, method, url)
                if user is not None and user.is_superuser:
                    expected, ok = "not 500", True
                else:
                    expected = "302 to a login page (never 200)"
                    ok = to_login(response)
                    if pattern.name == "admin:logout":  # ends the user's own session only
                        expected, ok = "200/302/405", response.status_code in (200, 302, 405)
                case = Case(pattern.name, role, "-", method, url, response.status_code, expected)
                cases.append(case)
                if response.status_code >= 500 or not ok:
                    case.error = recorder.last
                    failures.append(case)
                if pattern.name == "admin:logout" and user is not None:
                    client.force_login(user)
    return cases, failures
