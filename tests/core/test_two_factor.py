"""Two-factor sign-in (issue 11): after the password, a code from an authenticator app (or a
one-time recovery code) before anything else; enrolment at the first sign-in; wrong codes
throttled and counted towards the lockout; an audited admin reset.

These tests opt out of tests/conftest.py's full-sign-in force_login (`real_sign_in`):
force_login() is the password step only, and the codes are typed. The clock stands still a
few seconds into a 30-second step, so "the current code" is one code for the whole test."""

import io
import re
import uuid
from base64 import b32decode
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.lockout import is_locked_out
from accounts.testing import authenticator_for_tests, mark_verified
from audit.models import AuthEvent

from ..conftest import sign_in
from ..production import run_production

pytestmark = pytest.mark.real_sign_in

CODE_PAGE = "/accounts/two-factor/"


@pytest.fixture(autouse=True)
def _still_clock(time_machine):
    """Five seconds into a TOTP step, the clock stopped (moved on by the tests on purpose)."""
    now = timezone.now().timestamp()
    time_machine.move_to(datetime.fromtimestamp(now - now % 30 + 5, tz=UTC), tick=False)


@pytest.fixture
def wait(time_machine):
    """Moves the still clock on (django-otp's throttle asks for 2^(n-1) s after n failures)."""

    def move_on(seconds):
        time_machine.move_to(timezone.now() + timedelta(seconds=seconds), tick=False)

    return move_on


def _code(device, steps_ahead=0) -> str:
    return services.current_code(device, steps_ahead=steps_ahead)


def _submit(client, code, url=CODE_PAGE, **extra):
    return client.post(url, {"code": code, **extra})


def _events(kind, username="alice"):
    return AuthEvent.objects.filter(kind=kind, username=username)


# ---- every page waits for the second factor --------------------------------------------------

SAMPLE = {"uuid": str(uuid.uuid4()), "int": "1", "slug": "eligibility", "str": "x", "path": "1"}


def _concrete(part) -> str:
    text = str(part)
    if text.startswith("^"):  # a regex pattern (the admin's): first alternative, or a sample
        text = text.lstrip("^").rstrip("$").replace("\\Z", "")
        text = re.sub(r"\(\?P<\w+>([\w-]+)(?:\|[^)]*)?\)", r"\1", text)
        text = re.sub(r"\(\?P<\w+>[^)]*\)", "1", text)
        return text.replace("\\", "")
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE[m.group(1) or "str"], text)


def _every_path(resolver=None, prefix=""):
    """Every URL pattern of the project, from the resolver, as a path that resolves."""
    for entry in (resolver or get_resolver()).url_patterns:
        path = prefix + _concrete(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _every_path(entry, path)
        elif isinstance(entry, URLPattern):
            yield "/" + path


def test_a_user_signed_in_with_the_password_only_reaches_nothing_but_the_code_page(
    client, admin_user
):
    # The admin: the role that reaches the most pages (the Django admin included).
    authenticator_for_tests(admin_user)
    client.force_login(admin_user)  # the password step only
    paths = sorted({p for p in _every_path() if not p.startswith("/static")})
    for path in paths:
        resolve(path)  # each sample path really is one of the project's pages
    exempt = {CODE_PAGE, reverse("accounts:second-factor-enrol"), reverse("logout")}
    # Open to anyone, signed in or not (@login_not_required); the admin's login page sends a
    # signed-in user to the admin index, which waits for the code like every other page.
    public = {reverse("login"), reverse("healthz"), reverse("admin:login")}
    checked = 0
    for path in paths:
        if path in exempt | public:
            continue
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code == 302, (method.__name__, path, response.status_code)
            assert response["Location"].startswith(CODE_PAGE), (path, response["Location"])
            checked += 1
    assert len(paths) >= 100 and checked == 2 * (len(paths) - len(exempt | public))
    # The page it came from is kept, to go on there after the code.
    assert client.get("/patients/")["Location"] == f"{CODE_PAGE}?next=%2Fpatients%2F"
    # The code page, enrolment page and sign-out are reachable.
    assert client.get(CODE_PAGE).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("home"))["Location"].startswith(reverse("login"))


def test_the_menu_is_hidden_until_the_code_is_typed(client, andrologist):
    authenticator_for_tests(andrologist)
    client.force_login(andrologist)
    html = client.get(CODE_PAGE).content.decode()
    assert "Your code" in html and "Sign out" in html
    assert "Visit schedule" not in html and 'data-testid="whoami"' not in html


# ---- the code --------------------------------------------------------------------------------


def test_the_current_code_completes_the_sign_in_and_goes_on_to_the_page_asked_for(
    client, andrologist
):
    device = authenticator_for_tests(andrologist)
    client.force_login(andrologist)
    half_signed_in = client.cookies[settings.SESSION_COOKIE_NAME].value
    response = _submit(client, _code(device), next="/patients/")
    assert response.status_code == 302 and response["Location"] == "/patients/"
    assert client.get(reverse("home")).status_code == 200
    # A new session key once verified: the one from before the code stays half signed in.
    assert client.cookies[settings.SESSION_COOKIE_NAME].value != half_signed_in
    stale = Client()
    stale.cookies[settings.SESSION_COOKIE_NAME] = half_signed_in
    assert stale.get(reverse("home")).status_code == 302
    event = _events(AuthEvent.Kind.SECOND_FACTOR_VERIFIED).get()
    assert event.user == andrologist and event.detail == "authenticator code"


def test_the_next_page_is_never_another_site(client, andrologist):
    device = authenticator_for_tests(andrologist)
    client.force_login(andrologist)
    response = _submit(client, _code(device), next="https://evil.example/")
    assert response["Location"] == "/"


def test_a_code_more_than_one_step_old_is_refused(client, andrologist, wait):
    device = authenticator_for_tests(andrologist)
    client.force_login(andrologist)
    for old in (-2, -3, 2):  # a minute old or more (or ahead): refused
        response = _submit(client, _code(device, steps_ahead=old))
        assert "That code is not correct." in response.content.decode()
        assert client.get(reverse("home")).status_code == 302
        wait(2 ** (_events(AuthEvent.Kind.SECOND_FACTOR_FAILED).count() - 1))  # the throttle
    # One step back (a phone a little slow, or a code typed as it changed) is accepted.
    assert _submit(client, _code(device, steps_ahead=-1)).status_code == 302
    assert client.get(reverse("home")).status_code == 200


def test_a_code_works_once(client, andrologist):
    device = authenticator_for_tests(andrologist)
    code = _code(device)
    client.force_login(andrologist)
    assert _submit(client, code).status_code == 302
    # The same code again, from another browser with the password (someone who watched it
    # being typed): refused, as long as it would still be current.
    other = Client()
    other.force_login(andrologist)
    response = _submit(other, code)
    assert "That code is not correct." in response.content.decode()
    assert other.get(reverse("home")).status_code == 302


# ---- recovery codes --------------------------------------------------------------------------


def test_a_recovery_code_signs_in_once_and_is_stored_only_as_a_hash(client, andrologist):
    authenticator_for_tests(andrologist)
    codes = services.recovery_codes_issue(user=andrologist)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert not stored & {c for code in codes for c in (code, code.replace("-", ""))}
    client.force_login(andrologist)
    typed = codes[3].upper().replace("-", " ")  # as read out from paper
    response = _submit(client, typed)
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    event = _events(AuthEvent.Kind.RECOVERY_CODE_USED).get()
    assert "9 left" in event.detail
    other = Client()
    other.force_login(andrologist)
    assert "That code is not correct." in _submit(other, codes[3]).content.decode()
    assert other.get(reverse("home")).status_code == 302
    assert StaticToken.objects.count() == 9


# ---- wrong codes: throttle and lockout -------------------------------------------------------


def test_wrong_codes_are_throttled_then_lock_the_account_and_end_the_session(
    client, andrologist, admin_user, wait
):
    admin_user.email = "admin@example.org"
    admin_user.save()
    device = authenticator_for_tests(andrologist)
    client.force_login(andrologist)
    assert "not correct" in _submit(client, "000000").content.decode()
    # At once, even the right code is refused without being checked (django-otp's throttle:
    # 1 s after one failure, then 2, 4, 8 s), and that refusal is not counted.
    html = _submit(client, _code(device)).content.decode()
    assert "Too many wrong codes: wait 1 second(s)" in html
    assert client.get(reverse("home")).status_code == 302
    for n in range(1, settings.AXES_FAILURE_LIMIT):
        wait(2 ** (n - 1))
        response = _submit(client, "000000")
    # The fifth wrong code locks the account: django-axes' lockout answer, as for a fifth
    # wrong password, and the session is ended at once.
    assert response.status_code == 429
    assert "account is locked" in client.get(reverse("login")).content.decode()
    assert client.get(reverse("home"))["Location"].startswith(reverse("login"))
    failed = _events(AuthEvent.Kind.SECOND_FACTOR_FAILED)
    assert failed.count() == settings.AXES_FAILURE_LIMIT
    assert not _events(AuthEvent.Kind.LOGIN_FAILED).exists()  # logged as what they are
    assert _events(AuthEvent.Kind.LOCKOUT).exists()
    # The password alone no longer signs in, until the cool-off or an admin's unlock.
    assert sign_in(Client(), "alice").status_code != 302


def test_signing_in_again_with_the_password_does_not_wipe_out_wrong_codes(
    client, andrologist, rf, wait
):
    authenticator_for_tests(andrologist)
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        wait(2**n)
        attempt = Client()
        # Each time through the login form: a successful password used to reset the count.
        assert (
            attempt.post(
                reverse("login"), {"username": "alice", "password": "correct-horse-battery"}
            ).status_code
            == 302
        )
        assert "not correct" in _submit(attempt, "111111").content.decode()
    wait(60)
    last = Client()
    last.post(reverse("login"), {"username": "alice", "password": "correct-horse-battery"})
    assert _submit(last, "111111").status_code == 429  # locked
    assert is_locked_out(rf.get("/"), username="alice")


def test_a_complete_sign_in_clears_earlier_failures(client, andrologist, rf):
    device = authenticator_for_tests(andrologist)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        Client().post(reverse("login"), {"username": "alice", "password": "wrong"})
    client.force_login(andrologist)
    assert _submit(client, _code(device)).status_code == 302
    Client().post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert not is_locked_out(rf.get("/"), username="alice")


# ---- enrolment -------------------------------------------------------------------------------


def _code_from_page_key(html: str) -> str:
    groups = re.search(r'data-testid="secret">([A-Z2-7 ]+)<', html).group(1)
    key = groups.replace(" ", "")
    key += "=" * (-len(key) % 8)
    totp = TOTP(b32decode(key))
    totp.time = timezone.now().timestamp()
    return f"{totp.token():06d}"


def test_a_user_without_an_authenticator_enrols_one_and_sees_ten_recovery_codes_once(
    client, andrologist, rf, wait
):
    client.force_login(andrologist)
    response = client.get("/patients/")
    response = client.get(response["Location"])  # the code page: nothing enrolled yet
    enrol = reverse("accounts:second-factor-enrol")
    assert response["Location"] == f"{enrol}?next=%2Fpatients%2F"
    html = client.get(response["Location"]).content.decode()
    assert "<svg" in html and "otpauth://totp/NOA-MSC%20EDC%3Aalice?secret=" in html
    assert client.get(enrol).content.decode().count("<svg") == 1
    # The page shows the same key on a reload (one unconfirmed device), until confirmed.
    assert _code_from_page_key(client.get(enrol).content.decode()) == _code_from_page_key(html)
    # A wrong first code: said so, logged, not counted towards the lockout (the key is on
    # the page, nothing secret is being guessed).
    wrong = _submit(client, "123456", url=enrol, next="/patients/").content.decode()
    assert "That code does not match" in wrong
    assert _events(AuthEvent.Kind.SECOND_FACTOR_FAILED).count() == 1
    wait(1)
    done = _submit(client, _code_from_page_key(html), url=enrol, next="/patients/")
    page = done.content.decode()
    assert done.status_code == 200 and "shown only once" in page
    codes = re.findall(r"<li class=\"col-6\">([a-z2-9]{5}-[a-z2-9]{5})</li>", page)
    assert len(codes) == 10
    assert 'href="/patients/"' in page
    assert client.get("/patients/").status_code == 200  # signed in
    assert TOTPDevice.objects.get(user=andrologist).confirmed
    assert StaticToken.objects.filter(device__user=andrologist).count() == 10
    assert (
        _events(AuthEvent.Kind.SECOND_FACTOR_ENROLLED)
        .get()
        .detail.endswith("10 recovery codes issued")
    )
    assert not is_locked_out(rf.get("/"), username="alice")
    # Never shown again: the enrolment page now leads on, not to new codes.
    assert client.get(enrol).status_code == 302


def test_an_enrolled_authenticator_cannot_be_replaced_with_the_password_alone(client, andrologist):
    device = authenticator_for_tests(andrologist)
    client.force_login(andrologist)  # e.g. someone who has the password only
    enrol = reverse("accounts:second-factor-enrol")
    assert client.get(enrol)["Location"].startswith(CODE_PAGE)
    assert client.post(enrol, {"code": "123456"})["Location"].startswith(CODE_PAGE)
    assert list(TOTPDevice.objects.filter(user=andrologist)) == [device]


# ---- administrators reset a second factor ----------------------------------------------------


@pytest.fixture
def admin_client(admin_user):
    c = Client()
    c.force_login(admin_user)
    mark_verified(c, admin_user)
    return c


def _reset(admin_client, username, reason):
    url = reverse("monitoring:user-second-factor-reset", args=[username])
    return admin_client.post(url, {"reason": reason}, follow=True)


def test_an_admin_resets_a_lost_phone_with_a_reason_and_the_user_enrols_again(
    client, admin_client, andrologist
):
    authenticator_for_tests(andrologist)
    services.recovery_codes_issue(user=andrologist)
    client.force_login(andrologist)
    mark_verified(client, andrologist)
    assert client.get(reverse("home")).status_code == 200
    page = admin_client.get(reverse("monitoring:user-access")).content.decode()
    assert "Reset second factor" in page and "authenticator enrolled" in page
    html = _reset(admin_client, "alice", "Phone lost; identity checked in person").content
    assert b"Second factor reset: alice sets up an authenticator" in html
    assert not TOTPDevice.objects.filter(user=andrologist).exists()
    assert not StaticDevice.objects.filter(user=andrologist).exists()
    event = _events(AuthEvent.Kind.SECOND_FACTOR_RESET).get()
    assert event.actor_name == "adam" and "Phone lost; identity checked" in event.detail
    # Shown with the account's access changes.
    page = admin_client.get(reverse("monitoring:user-access")).content.decode()
    assert "Phone lost; identity checked in person" in page
    # Her session verified with the old phone needs a code again: she enrols the new one.
    response = client.get(reverse("home"))
    assert response["Location"].startswith(CODE_PAGE)
    assert client.get(response["Location"])["Location"].startswith(
        reverse("accounts:second-factor-enrol")
    )


def test_a_reset_needs_a_reason(admin_client, andrologist):
    authenticator_for_tests(andrologist)
    html = _reset(admin_client, "alice", "   ").content.decode()
    assert "Say why the second factor is reset." in html
    assert TOTPDevice.objects.filter(user=andrologist).exists()
    assert not _events(AuthEvent.Kind.SECOND_FACTOR_RESET).exists()


def test_an_admin_cannot_reset_their_own_second_factor(admin_client, admin_user):
    html = _reset(admin_client, "adam", "I lost my phone").content.decode()
    assert "another administrator must do it" in html
    assert TOTPDevice.objects.filter(user=admin_user).exists()
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.SECOND_FACTOR_RESET).exists()
    page = admin_client.get(reverse("monitoring:user-access")).content.decode()
    assert "Yours: another administrator can reset it." in page


def test_only_an_admin_can_reset(client, monitor, andrologist):
    authenticator_for_tests(andrologist)
    client.force_login(monitor)
    mark_verified(client, monitor)
    url = reverse("monitoring:user-second-factor-reset", args=["alice"])
    assert client.post(url, {"reason": "x"}).status_code == 403
    assert TOTPDevice.objects.filter(user=andrologist).exists()


# ---- settings, the demo ----------------------------------------------------------------------


def test_with_two_factor_switched_off_every_page_says_so(client, andrologist, settings):
    assert "two-factor-off" not in client.get(reverse("login")).content.decode()
    settings.EDC_REQUIRE_2FA = False
    banner = 'data-testid="two-factor-off"'
    assert banner in client.get(reverse("login")).content.decode()
    client.force_login(andrologist)  # the password alone is then enough
    response = client.get(reverse("home"))
    assert response.status_code == 200 and banner in response.content.decode()


def test_production_enforces_two_factor_whatever_the_environment_says():
    script = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.EDC_REQUIRE_2FA, "
        "'accounts.middleware.SecondFactorRequiredMiddleware' in settings.MIDDLEWARE, "
        "'django_otp.middleware.OTPMiddleware' in settings.MIDDLEWARE)"
    )
    out = run_production(
        ["-c", script],
        {"SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "edc.example.org", "EDC_REQUIRE_2FA": "0"},
    )
    assert out.stdout.split() == ["True", "True", "True"], out.stderr[-2000:]


def test_demo_totp_prints_a_working_code_for_demo_accounts_only(client, andrologist, coordinator):
    services.demo_authenticator_enrol(user=andrologist)
    out = io.StringIO()
    call_command("demo_totp", "alice", stdout=out)
    code = out.getvalue().strip()
    assert re.fullmatch(r"\d{6}", code)
    client.force_login(andrologist)
    assert _submit(client, code).status_code == 302
    # Asked again within the same 30 seconds: the next code, as the first one was used.
    out = io.StringIO()
    call_command("demo_totp", "alice", stdout=out)
    assert out.getvalue().strip() != code
    authenticator_for_tests(coordinator)  # a real authenticator: its codes are never printed
    with pytest.raises(CommandError, match="no demo authenticator"):
        call_command("demo_totp", "carol", stdout=io.StringIO())


def test_signatures_keep_password_re_entry_and_ask_no_code(client, andrologist, screening_visit):
    client.force_login(andrologist)
    mark_verified(client, andrologist)
    url = reverse(
        "monitoring:sign-visit", args=[screening_visit.patient.uuid, screening_visit.uuid]
    )
    html = client.get(url).content.decode()
    assert 'name="password"' in html and 'name="code"' not in html
