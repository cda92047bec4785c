"""Playwright driving Debian's Chromium against Django's live server.

Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls in a
thread with a running loop unless told that this is deliberate (the test thread only sets
data up and reads results, the server runs in its own thread)."""

import os

import pytest
from django.db import connections

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
        # While Playwright runs, its event loop counts as running in this thread, so Django
        # (asgiref's Local) keeps this thread's database connections in context-local storage
        # instead of the thread-local one. Every test after the first browser test used such a
        # connection; once Playwright stops it is out of Django's sight and is never closed,
        # and dropping the test database then fails ("being accessed by other users", the CI
        # failure of session 2). Close it while it can still be seen.
        connections.close_all()


# Every page records what the Content-Security-Policy blocked (an init script runs before the
# page's own and is not subject to the policy); a browser test fails when anything was.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
    " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


def csp_violations(page) -> list[str]:
    """What the policy blocked on the page shown now."""
    return page.evaluate("window.__cspViolations || []")


@pytest.fixture
def page(browser, live_server, settings, tmp_path):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1400, "height": 1000}
    )
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    page = context.new_page()
    # Chromium also reports a violation on the console, whichever page it happened on.
    blocked = []
    page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield page
    context.close()
    assert not blocked, f"the Content-Security-Policy blocked: {blocked}"


def login(page, username, password="correct-horse-battery"):
    """The real sign-in, as a user types it: the password, then the code their authenticator
    app shows, computed here from the device's key (a user without an authenticator gets a
    test one first; tests/browser/test_two_factor.py walks the enrolment itself)."""
    from django.contrib.auth import get_user_model

    from accounts.testing import authenticator_for_tests, usable_code

    device = authenticator_for_tests(get_user_model().objects.get(username=username))
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    click_through(page, "button[type=submit]")
    page.fill("#id_code", usable_code(device))
    page.click("[data-testid=second-factor-form] button[type=submit]")
    page.wait_for_selector("[data-testid=whoami]")


def click_through(page, target):
    """Click something that loads a page (a link, a submit button) and wait for that page.

    `page.click` returns once the click is dispatched; reading the page right after can read
    the old page (the cause of a flaky CI run). Waiting for the navigation makes the next
    assertion read the page the click loaded."""
    locator = page.locator(target) if isinstance(target, str) else target
    with page.expect_navigation():
        locator.click()
