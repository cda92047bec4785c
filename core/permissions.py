from functools import wraps

from django.core.exceptions import PermissionDenied

from .roles import has_role


def role_required(*roles: str):
    """Function views: 403 unless the user holds one of `roles`."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
