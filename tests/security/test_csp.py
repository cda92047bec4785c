"""A Content-Security-Policy on every page (ASVS 4.0 V14.4.3), and nothing in the pages that
the policy would have to allow: no inline script, no on*="" handler, no style="" attribute,
no javascript: link. Every page is found by following the links of the app as each role
sees it, so a new page is checked without a change here."""

import re
from collections import Counter, deque
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.urls import Resolver404, resolve

# What every page's policy must say (django-csp writes it from CONTENT_SECURITY_POLICY).
REQUIRED = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
}

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
HANDLER = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.DOTALL)
STYLE_ATTRIBUTE = re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.DOTALL)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)

# Links not followed: downloads (not HTML), leaving the session, Django admin actions.
SKIP = re.compile(
    r"^/(static|media)/|/accounts/logout/|/admin/logout/|format=|\.csv|/download/|"
    r"/document/|/exports/(csv|odm|bundle|blank)/|/delete/|/password/"
)
# A few of each kind of page (every patient page is the same template).
PER_ROUTE = 1
MAX_PAGES = 400


def policy_of(response) -> dict[str, set[str]]:
    header = response.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = set(words[1:])
    return directives


def problems_in(url: str, response) -> list[str]:
    found = []
    policy = policy_of(response)
    for directive, sources in REQUIRED.items():
        if policy.get(directive) != sources:
            found.append(f"{url}: {directive} is {policy.get(directive)}, not {sources}")
    if any("'unsafe-inline'" in s or "'unsafe-eval'" in s for s in policy.values()):
        found.append(f"{url}: the policy allows unsafe-inline or unsafe-eval")
    html = response.content.decode()
    for name, pattern in [
        ("inline <script>", INLINE_SCRIPT),
        ('on*="" handler', HANDLER),
        ('style="" attribute', STYLE_ATTRIBUTE),
        ("javascript: URL", JS_URL),
    ]:
        match = pattern.search(html)
        if match:
            found.append(f"{url}: {name}: {match.group(0)[:120]!r}")
    return found


def route_of(path: str) -> str:
    try:
        return resolve(path).view_name
    except Resolver404:
        return path


def crawl(client, start="/") -> tuple[list[str], Counter]:
    """Follow the app's links breadth first; check each HTML page. Returns the problems and
    the pages seen per route."""
    queue, seen, per_route, problems = deque([start]), {start}, Counter(), []
    while queue and sum(per_route.values()) < MAX_PAGES:
        url = queue.popleft()
        route = route_of(urlsplit(url).path)
        if per_route[route] >= PER_ROUTE:
            continue
        response = client.get(url)
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        per_route[route] += 1
        assert response.status_code < 500, url
        problems += problems_in(url, response)
        for href in re.findall(r'href="([^"#]+)', response.content.decode()):
            link = unescape(href)
            local = link.startswith("/") and not link.startswith("//")
            if local and not SKIP.search(link) and link not in seen:
                seen.add(link)
                queue.append(link)
    return problems, per_route


@pytest.mark.parametrize("username", ["alice", "carol", "mona", "larry"])
def test_every_page_a_role_reaches_carries_the_policy_and_needs_no_inline_code(
    client, trial_in_use, lab_technician, username, django_user_model
):
    client.force_login(django_user_model.objects.get(username=username))
    problems, per_route = crawl(client)
    assert not problems, "\n".join(problems)
    # The crawl really went round the app (not stopped at the home page).
    assert len(per_route) >= 8, per_route


def test_the_admin_crawl_reaches_the_pages_of_each_app_and_all_carry_the_policy(
    client, trial_in_use, django_user_model
):
    client.force_login(django_user_model.objects.get(username="adam"))
    problems, per_route = crawl(client)
    assert not problems, "\n".join(problems)
    for route in [
        "home",
        "patients:patient-list",
        "patients:patient-detail",
        "patients:crf-edit",
        "followup:schedule",
        "followup:ae-list",
        "followup:cm-list",
        "monitoring:query-list",
        "monitoring:query-detail",
        "audit:trail",
        "audit:record-history",
        "reports:results",
        "exports:study",
        "exports:job-detail",
        "admin:index",
    ]:
        assert per_route[route], f"{route} not reached: {sorted(per_route)}"


def test_the_login_page_and_error_pages_carry_the_policy(client, andrologist):
    assert not problems_in("/accounts/login/", client.get("/accounts/login/"))
    client.force_login(andrologist)
    not_found = client.get("/patients/00000000-0000-0000-0000-000000000000/")
    assert not_found.status_code == 404
    assert policy_of(not_found)["script-src"] == {"'self'"}
    forbidden = client.get("/monitoring/user-access/")
    assert forbidden.status_code == 403
    assert policy_of(forbidden)["frame-ancestors"] == {"'none'"}


def test_a_policy_a_view_sets_itself_is_kept():
    # The consent scan is served with its own "sandbox" policy (patients.views.consent_document,
    # tested end to end in tests/patients/test_consent_upload.py): the middleware keeps it.
    from csp.middleware import CSPMiddleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    def view(request):
        response = HttpResponse(b"%PDF-1.4", content_type="application/pdf")
        response["Content-Security-Policy"] = "sandbox"
        return response

    response = CSPMiddleware(view)(RequestFactory().get("/x"))
    assert response["Content-Security-Policy"] == "sandbox"


TEMPLATES = Path(settings.BASE_DIR) / "templates"


def test_no_template_has_inline_script_handlers_or_style_attributes():
    # The PDF templates are read by WeasyPrint only (no browser, no policy): they may style.
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        if path.relative_to(TEMPLATES).parts[0] == "pdf":
            continue
        text = path.read_text()
        for name, pattern in [
            ("inline <script>", INLINE_SCRIPT),
            ("on*= handler", HANDLER),
            ("javascript: URL", JS_URL),
        ]:
            if pattern.search(text):
                offenders.append(f"{path.relative_to(TEMPLATES)}: {name}")
        if path.name != "results_pdf.html" and STYLE_ATTRIBUTE.search(text):
            offenders.append(f"{path.relative_to(TEMPLATES)}: style attribute")
    assert not offenders, offenders


def test_the_settings_state_the_policy():
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    for name, sources in REQUIRED.items():
        assert set(directives[name]) == sources, name
    assert "csp.middleware.CSPMiddleware" in settings.MIDDLEWARE
