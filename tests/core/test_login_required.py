import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from ..conftest import sign_in

DUMMY = {"uuid": str(uuid.uuid4()), "int": "1", "slug": "eligibility", "str": "x", "path": "x"}


def _all_paths(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        pattern = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if pattern.startswith("admin/"):
                continue  # the admin has its own login (tested below)
            yield from _all_paths(entry, pattern)
        elif isinstance(entry, URLPattern):
            yield pattern


def _concrete(pattern: str) -> str:
    import re

    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: DUMMY[m.group(1) or "str"], pattern)


def test_every_page_except_login_redirects_anonymous_users(client, db):
    paths = [_concrete(p) for p in _all_paths() if not p.startswith("static")]
    assert len(paths) >= 8
    login = reverse("login")
    # The health check (tests/core/test_health.py) says only "ok": no data, no login.
    open_paths = {login, reverse("healthz")}
    for path in paths:
        response = client.get(path)
        if path in open_paths:
            assert response.status_code == 200
            continue
        assert response.status_code == 302, path
        assert response["Location"].startswith(login), path


def test_the_django_admin_is_for_the_admin_role_only(client, andrologist, admin_user):
    client.force_login(andrologist)
    assert client.get("/admin/").status_code == 302  # to the admin login: not allowed in
    andrologist.is_staff = True
    andrologist.save()
    assert client.get("/admin/").status_code == 302  # staff flag alone is not enough
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_login_page_logs_a_demo_user_in_and_shows_their_site(client, andrologist):
    sign_in(client, "alice")  # password, then the authenticator's code
    response = client.get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Alice" in html and "Andrologist" in html and "BEN" in html
