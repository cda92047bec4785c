"""Two-factor sign-in in the browser: a new user enrols an authenticator at their first
sign-in (QR code and key shown, first code typed), keeps the recovery codes shown once, and
signs in again later with the password and the app's code."""

import re
from base64 import b32decode

import pytest
from django.utils import timezone
from django_otp.oath import TOTP

from audit.models import AuthEvent

from .conftest import click_through

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _app_code(key_shown: str, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for the key typed in from the page."""
    key = key_shown.replace(" ", "")
    totp = TOTP(b32decode(key + "=" * (-len(key) % 8)))
    totp.time = timezone.now().timestamp() + 30 * steps_ahead
    return f"{totp.token():06d}"


def _password(page, username="alice"):
    if "/accounts/login/" not in page.url:
        page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    click_through(page, "button[type=submit]")


def test_a_new_user_enrols_an_authenticator_then_signs_in_with_its_code(page, andrologist):
    page.goto("/patients/")  # sent to the login page, which keeps where they were going
    _password(page)
    assert "/accounts/two-factor/enrol/" in page.url
    assert page.locator("[data-testid=qr-code] svg").is_visible()
    key = page.inner_text("[data-testid=secret]")
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", key.strip())
    page.fill("#id_code", _app_code(key))
    click_through(page, "[data-testid=enrol-form] button[type=submit]")
    codes = page.locator("[data-testid=recovery-codes] li").all_inner_texts()
    assert len(codes) == 10 and "shown only once" in page.inner_text("main")
    click_through(page, "[data-testid=continue]")
    assert page.url.endswith("/patients/")
    assert "Andrologist" in page.inner_text("[data-testid=whoami]")
    # Later: signed out, then in again with the password and the app's code.
    click_through(page, "nav button[type=submit]")  # Log out
    _password(page)
    assert "/accounts/two-factor/" in page.url
    assert not page.locator("[data-testid=whoami]").count()  # no menu before the code
    page.fill("#id_code", _app_code(key, steps_ahead=1))  # the enrolment used this step's
    click_through(page, "[data-testid=second-factor-form] button[type=submit]")
    assert "Andrologist" in page.inner_text("[data-testid=whoami]")
    kinds = set(AuthEvent.objects.filter(username="alice").values_list("kind", flat=True))
    assert {"2fa_enrolled", "2fa_verified"} <= kinds
