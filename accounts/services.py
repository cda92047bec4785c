"""Two-factor sign-in (issue 11): after the password, a time-based code from an authenticator
app (RFC 6238, django-otp's TOTPDevice), or one of ten one-time recovery codes.

* A user without an authenticator enrols one at their next sign-in (the first code they type
  confirms it) and is shown their recovery codes once.
* A wrong code counts twice over: django-otp throttles the device (the next try is refused for
  2^(n-1) seconds after n wrong codes) and it counts as a failed sign-in towards the account's
  lockout (django-axes: AXES_FAILURE_LIMIT, e-mail to the admins, the session ends).
* An administrator resets another user's second factor with a reason; the user enrols again.

Every step is an AuthEvent. Signatures keep password re-entry only (21 CFR 11.200)."""

import secrets
from base64 import b32encode
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp import login as otp_login
from django_otp import verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuthEvent
from audit.services import auth_event_log

AUTHENTICATOR_NAME = "Authenticator app"
# seed_demo's devices: `manage.py demo_totp` prints codes for these and for no other device.
DEMO_AUTHENTICATOR_NAME = "Demo authenticator (seed_demo)"
RECOVERY_DEVICE_NAME = "Recovery codes"
# 32 letters and digits without l, o, 0 and 1 (misread on paper): 50 bits per 10-letter code.
RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH = 10


def second_factor_required() -> bool:
    return settings.EDC_REQUIRE_2FA


def authenticator_of(*, user) -> TOTPDevice | None:
    """The user's confirmed authenticator, if they have enrolled one."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def recovery_codes_left(*, user) -> int:
    return StaticToken.objects.filter(device__user=user).count()


def _session_verified(request, device) -> None:
    """The session is marked verified with `device`, under a new session key: a key seen
    between the password and the code never becomes a fully signed-in session."""
    otp_login(request, device)
    request.session.cycle_key()


def sign_in_complete(*, username: str) -> None:
    """The sign-in is complete (password and, when required, second factor): earlier failed
    attempts no longer count towards the lockout (AXES_RESET_ON_SUCCESS is off for this)."""
    from axes.handlers.proxy import AxesProxyHandler

    AxesProxyHandler.reset_attempts(username=username)


# ---- enrolment -------------------------------------------------------------------------------


def enrolment_device(*, user) -> TOTPDevice:
    """The unconfirmed authenticator the enrolment page shows. The same one on every reload
    (the QR code does not change under the user's phone) until a first code confirms it."""
    if authenticator_of(user=user) is not None:
        raise ValidationError("An authenticator is already enrolled for this account.")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


def secret_base32(device: TOTPDevice) -> str:
    """The key as typed into an authenticator app by hand (RFC 4648 base32, no padding)."""
    return b32encode(device.bin_key).decode().rstrip("=")


def qr_code_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG QR code (no image request, no script), with the
    standard four-module quiet zone."""
    import qrcode
    from qrcode.image.svg import SvgPathImage

    image = qrcode.make(device.config_url, image_factory=SvgPathImage, box_size=12, border=4)
    return image.to_string(encoding="unicode")


def _throttle_message(device) -> str | None:
    allowed, info = device.verify_is_allowed()
    if allowed:
        return None
    wait = max(1, int((info["locked_until"] - timezone.now()).total_seconds() + 0.999))
    return f"Too many wrong codes: wait {wait} second(s), then type the newest code."


def enrolment_confirm(*, request, device: TOTPDevice, code: str) -> list[str]:
    """The first code from the app confirms the authenticator: the user is signed in with it
    and gets their recovery codes (returned here, shown once, stored only as hashes).

    A wrong code here is logged but does not count towards the lockout: the key is on the
    page, so nothing secret is being guessed; django-otp's throttle still applies."""
    user = request.user
    if device.user_id != user.pk or device.confirmed or authenticator_of(user=user):
        raise ValidationError("This authenticator cannot be enrolled: start again.")
    code = normalise_code(code)
    throttled = _throttle_message(device)
    if throttled:
        raise ValidationError({"code": throttled})
    if not (code.isdigit() and verify_token(user, device.persistent_id, code)):
        _log(request, AuthEvent.Kind.SECOND_FACTOR_FAILED, "enrolment: the code did not match")
        raise ValidationError(
            {
                "code": "That code does not match: check the app shows this account, then type "
                "the newest code."
            }
        )
    device.refresh_from_db()
    with transaction.atomic():
        # One authenticator per user: anything left from an earlier enrolment goes.
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = recovery_codes_issue(user=user)
    _session_verified(request, device)
    sign_in_complete(username=user.get_username())
    _log(
        request,
        AuthEvent.Kind.SECOND_FACTOR_ENROLLED,
        f"authenticator enrolled, {len(codes)} recovery codes issued",
    )
    return codes


# ---- recovery codes --------------------------------------------------------------------------


def normalise_code(code: str) -> str:
    """What the user typed, without spaces or dashes, in lower case."""
    return "".join(code.split()).replace("-", "").lower()


def _recovery_digest(code: str) -> str:
    """Recovery codes are stored as a keyed hash (SECRET_KEY), never as typed: someone who
    reads the database cannot use them. 64 bits fit django-otp's 16-character token."""
    return salted_hmac("accounts.recovery-code", normalise_code(code)).hexdigest()[:16]


def _new_recovery_code() -> str:
    letters = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return f"{letters[:5]}-{letters[5:]}"


def recovery_codes_issue(*, user) -> list[str]:
    """A new set of recovery codes; any earlier set stops working."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME)
    codes = [_new_recovery_code() for _ in range(settings.EDC_RECOVERY_CODES)]
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=_recovery_digest(code)) for code in codes
    )
    return codes


# ---- the code page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    with_recovery_code: bool
    recovery_codes_left: int


def second_factor_verify(*, request, code: str) -> Verified:
    """Checks the code typed after the password: six digits are the authenticator's code,
    anything longer a recovery code (each works once). Raises ValidationError with the
    message for the form; a wrong code is logged and counts towards the lockout."""
    user = request.user
    typed = normalise_code(code)
    recovery = not (typed.isdigit() and len(typed) <= 8)
    if recovery:
        device = StaticDevice.objects.filter(user=user).first()
        token = _recovery_digest(typed)
    else:
        device = authenticator_of(user=user)
        token = typed
    if device is None:
        what = "recovery codes" if recovery else "authenticator"
        _code_failed(request, user, f"no {what} enrolled")
        raise ValidationError({"code": "That code is not correct."})
    throttled = _throttle_message(device)
    if throttled:
        # Refused without looking at the code: no guess is checked, so none is counted.
        raise ValidationError({"code": throttled})
    if verify_token(user, device.persistent_id, token) is None:
        _code_failed(request, user, "wrong recovery code" if recovery else "wrong code")
        raise ValidationError({"code": "That code is not correct."})
    device.refresh_from_db()
    _session_verified(request, device)
    sign_in_complete(username=user.get_username())
    if recovery:
        left = recovery_codes_left(user=user)
        _log(
            request,
            AuthEvent.Kind.RECOVERY_CODE_USED,
            f"signed in with a recovery code; {left} left",
        )
        return Verified(with_recovery_code=True, recovery_codes_left=left)
    _log(request, AuthEvent.Kind.SECOND_FACTOR_VERIFIED, "authenticator code")
    return Verified(with_recovery_code=False, recovery_codes_left=recovery_codes_left(user=user))


def _code_failed(request, user, detail: str) -> None:
    _log(request, AuthEvent.Kind.SECOND_FACTOR_FAILED, detail)
    # Counts towards the account's lockout like a wrong password (django-axes listens to
    # this signal); `second_factor` keeps it out of the "Failed login" events.
    user_login_failed.send(
        sender=__name__,
        credentials={"username": user.get_username(), "second_factor": True},
        request=request,
    )


def _log(request, kind: str, detail: str) -> None:
    user = request.user
    auth_event_log(
        kind=kind, username=user.get_username(), user=user, request=request, detail=detail
    )


# ---- administrators --------------------------------------------------------------------------


def has_second_factor(*, user) -> bool:
    return (
        TOTPDevice.objects.filter(user=user).exists()
        or StaticDevice.objects.filter(user=user).exists()
    )


@transaction.atomic
def second_factor_reset(*, request, username: str, reason: str) -> None:
    """An administrator removes another user's authenticator and recovery codes (a lost
    phone): the user enrols again at their next sign-in, and any session they had verified
    with the old authenticator needs a code again. Kept as an AuthEvent with the reason."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the second factor is reset."})
    target = get_user_model().objects.filter(username=username).first()
    if target is None:
        raise ValidationError(f"There is no account {username!r}.")
    if target.pk == request.user.pk:
        raise ValidationError(
            "You cannot reset your own second factor: another administrator must do it."
        )
    if not has_second_factor(user=target):
        raise ValidationError(f"{username} has no second factor to reset.")
    TOTPDevice.objects.filter(user=target).delete()
    StaticDevice.objects.filter(user=target).delete()
    auth_event_log(
        kind=AuthEvent.Kind.SECOND_FACTOR_RESET,
        username=target.get_username(),
        user=target,
        request=request,
        detail=f"second factor reset (enrols again at next sign-in): {reason}",
    )


# ---- the demo --------------------------------------------------------------------------------


def demo_authenticator_enrol(*, user) -> TOTPDevice:
    """seed_demo: a confirmed authenticator for a demo account (kept if it already has one),
    whose codes `manage.py demo_totp` prints."""
    device = authenticator_of(user=user)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEMO_AUTHENTICATOR_NAME, confirmed=True)
    return device


def current_code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the device's app shows now (demo_totp and the tests)."""
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = timezone.now().timestamp() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def usable_code(device: TOTPDevice) -> str:
    """A code the server accepts now: the current one, or the next step's when the current
    one was already used (one step either side is accepted, each step once)."""
    device.refresh_from_db()
    step_now = int((timezone.now().timestamp() - device.t0) // device.step)
    if device.last_t < step_now:
        return current_code(device)
    if device.last_t == step_now:
        return current_code(device, steps_ahead=1)
    raise ValidationError("Both codes usable now were used: wait 30 seconds.")
