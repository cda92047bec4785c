"""Until the second factor is verified, a signed-in user reaches nothing but the code,
enrolment and logout pages (and the public ones: login, health check)."""

from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse


def second_factor_not_required(view):
    """Marks a view an unverified user may reach (the code, enrolment and logout pages)."""
    view.second_factor_exempt = True
    return view


class SecondFactorRequiredMiddleware:
    """302 to the code page for a signed-in user whose session has no verified device
    (django-otp's OTPMiddleware sets `user.is_verified()`), when EDC_REQUIRE_2FA is on.

    Cost: nothing beyond OTPMiddleware's one query per signed-in request (it loads the
    session's device, so a reset or deleted device unverifies open sessions at once)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not settings.EDC_REQUIRE_2FA:
            return None
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        # Pages open to anyone (@login_not_required: login, health check) stay open.
        if not getattr(view_func, "login_required", True):
            return None
        if getattr(view_func, "second_factor_exempt", False):
            return None
        target = reverse("accounts:second-factor")
        if request.method == "GET":
            target += "?" + urlencode({"next": request.get_full_path()})
        return redirect(target)
