"""Authentication and access-change events, from Django's and django-axes' own signals."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from core.request_source import current_request

from .models import AuthEvent
from .services import audit_role_change, auth_event_log, role_names, set_audit_context


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    auth_event_log(
        kind=AuthEvent.Kind.LOGIN, username=user.get_username(), user=user, request=request
    )


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        auth_event_log(
            kind=AuthEvent.Kind.LOGOUT, username=user.get_username(), user=user, request=request
        )


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    if credentials.get("second_factor"):
        return  # a wrong code: accounts.services logs it as such (and axes counts it)
    auth_event_log(
        kind=AuthEvent.Kind.LOGIN_FAILED, username=credentials.get("username", ""), request=request
    )


def _locked_out(sender, request, username, ip_address, **kwargs):
    auth_event_log(
        kind=AuthEvent.Kind.LOCKOUT,
        username=username or "",
        request=request,
        detail=f"Locked after repeated failed attempts from {ip_address}.",
    )
    # The administrators' e-mail: accounts.lockout, which listens to the same signal.


def connect_axes():
    from axes.signals import user_locked_out

    user_locked_out.connect(_locked_out, dispatch_uid="audit_locked_out")


@receiver(m2m_changed, sender=get_user_model().groups.through)
def _roles_changed(sender, instance, action, pk_set, **kwargs):
    """A user's roles are study configuration: each change is an AuthEvent (the access log)
    and an audit-trail row on the user (old roles -> new roles, who, why)."""
    if not isinstance(instance, get_user_model()):
        return
    if action in ("pre_add", "pre_remove", "pre_clear"):
        instance._roles_before = role_names(instance)
        # The application records this change itself: the database trigger need not.
        set_audit_context("app")
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    set_audit_context("")
    names = ", ".join(Group.objects.filter(pk__in=pk_set or []).values_list("name", flat=True))
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}[action]
    auth_event_log(
        kind=AuthEvent.Kind.ROLE_CHANGE,
        username=instance.get_username(),
        user=instance,
        detail=f"roles {verb}: {names}".strip(),
    )
    request = current_request()
    actor = getattr(request, "user", None) if request is not None else None
    audit_role_change(
        member=instance,
        before=instance.__dict__.pop("_roles_before", ""),
        actor=actor if actor is not None and actor.is_authenticated else None,
    )


def _membership_saved(sender, instance, created, **kwargs):
    if created:
        auth_event_log(
            kind=AuthEvent.Kind.SITE_CHANGE,
            username=instance.user.get_username(),
            user=instance.user,
            detail=f"site added: {instance.site.code}",
        )


def _membership_deleted(sender, instance, **kwargs):
    auth_event_log(
        kind=AuthEvent.Kind.SITE_CHANGE,
        username=instance.user.get_username(),
        user=instance.user,
        detail=f"site removed: {instance.site.code}",
    )


def connect_memberships():
    from trial.models import SiteMembership

    post_save.connect(_membership_saved, sender=SiteMembership, dispatch_uid="audit_site_added")
    post_delete.connect(
        _membership_deleted, sender=SiteMembership, dispatch_uid="audit_site_removed"
    )


@receiver(pre_save, sender=get_user_model())
def _account_activation(sender, instance, **kwargs):
    if instance.pk is None:
        return
    was_active = sender.objects.filter(pk=instance.pk).values_list("is_active", flat=True).first()
    if was_active is not None and was_active != instance.is_active:
        state = "activated" if instance.is_active else "deactivated"
        auth_event_log(
            kind=AuthEvent.Kind.ACCOUNT_CHANGE,
            username=instance.get_username(),
            user=instance,
            detail=f"account {state}",
        )


@receiver(pre_delete, sender=get_user_model())
def _users_are_never_deleted(sender, instance, **kwargs):
    """21 CFR 11.100(a): an account is deactivated, never deleted, so its username (and the
    signatures made with it) can never be reassigned."""
    raise PermissionError(
        f"User accounts are deactivated, never deleted ({instance.get_username()})."
    )
