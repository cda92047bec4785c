from django.conf import settings

from core.roles import user_roles
from trial.selectors import sites_for_user


def user_context(request):
    # Every page, the login page included, says when two-factor sign-in is switched off.
    context = {"two_factor_off": not settings.EDC_REQUIRE_2FA}
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return context
    is_verified = getattr(user, "is_verified", None)
    if settings.EDC_REQUIRE_2FA and is_verified is not None and not is_verified():
        # Signed in with the password only: the menu would lead nowhere (accounts.middleware).
        context["second_factor_pending"] = True
        return context
    return {
        **context,
        "user_role_names": sorted(user_roles(user)),
        "user_sites": sites_for_user(user=user),
    }
