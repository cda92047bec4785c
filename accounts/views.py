from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from core.forms import apply_validation_error

from . import services
from .forms import EnrolmentForm, SecondFactorForm
from .lockout import is_locked_out
from .middleware import second_factor_not_required
from .session_guard import LOCKED


def _next(request) -> str:
    """Where the user was going before the code page (this site only), else home."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


def _with_next(request, url_name: str):
    response = redirect(url_name)
    nxt = _next(request)
    if nxt != "/":
        response["Location"] += "?" + urlencode({"next": nxt})
    return response


def _done(request):
    return not services.second_factor_required() or request.user.is_verified()


@second_factor_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def second_factor_view(request):
    """After the password: the authenticator's code (or a recovery code)."""
    if _done(request):
        return redirect(_next(request))
    if services.authenticator_of(user=request.user) is None:
        return _with_next(request, "accounts:second-factor-enrol")
    form = SecondFactorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            verified = services.second_factor_verify(
                request=request, code=form.cleaned_data["code"]
            )
        except ValidationError as exc:
            if is_locked_out(request, username=request.user.get_username()):
                # The wrong code that locked the account ends this session at once.
                logout(request)
                messages.error(request, LOCKED)
                return redirect("login")
            apply_validation_error(form, exc)
        else:
            if verified.with_recovery_code:
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {verified.recovery_codes_left} left. "
                    "Lost your phone? Ask an administrator to reset your second factor, then "
                    "enrol the new phone at your next sign-in.",
                )
            return redirect(_next(request))
    return render(request, "accounts/second_factor.html", {"form": form, "next": _next(request)})


@second_factor_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def enrol_view(request):
    """First sign-in (or after an admin reset): scan the QR code, type the first code, then
    see the recovery codes, once."""
    if _done(request):
        return redirect(_next(request))
    if services.authenticator_of(user=request.user) is not None:
        # Replacing an enrolled authenticator takes an admin reset, never a password alone.
        return _with_next(request, "accounts:second-factor")
    device = services.enrolment_device(user=request.user)
    form = EnrolmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.enrolment_confirm(
                request=request, device=device, code=form.cleaned_data["code"]
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            # Shown in this response only: never stored in clear, never shown again.
            return render(
                request, "accounts/recovery_codes.html", {"codes": codes, "next": _next(request)}
            )
    secret = services.secret_base32(device)
    return render(
        request,
        "accounts/enrol.html",
        {
            "form": form,
            "next": _next(request),
            "qr_svg": services.qr_code_svg(device),
            "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
            "secret": secret,
            "otpauth_uri": device.config_url,
        },
    )
