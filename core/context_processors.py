from .roles import user_roles


def user_context(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from trial.selectors import sites_for_user

    return {
        "user_role_names": sorted(user_roles(user)),
        "user_sites": sites_for_user(user=user),
    }
