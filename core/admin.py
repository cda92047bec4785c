from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm

from audit.admin import ReasonForChangeForm
from audit.services import change_reason

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
