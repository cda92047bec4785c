"""The user accounts in the admin: deactivated, never deleted; a change of roles says why.

django-otp registers its devices in the admin; here they are not: removing a device there
would reset a second factor with no reason and no AuthEvent. Resets go through User access
(monitoring), audited."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.admin import ReasonForChangeForm
from core.change_reason import change_reason

for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


User = get_user_model()
admin.site.unregister(User)


class StudyUserChangeForm(ReasonForChangeForm, UserChangeForm):
    """Roles are study configuration: a change says why (kept on the audit-trail row)."""


@admin.register(User)
class StudyUserAdmin(UserAdmin):
    """Accounts are deactivated, never deleted, and a username never changes (21 CFR 11.100)."""

    form = StudyUserChangeForm

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "username") if obj is not None else fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [*fieldsets, ("Reason for change", {"fields": ("reason_for_change",)})]

    def save_related(self, request, form, formsets, change):
        # Roles are saved here (form.save_m2m): audit.signals writes their trail row, with
        # this reason.
        with change_reason(form.reason() if change else "Account created"):
            super().save_related(request, form, formsets, change)

    def has_delete_permission(self, request, obj=None):
        return False
