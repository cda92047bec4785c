from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class StudyUserAdmin(UserAdmin):
    """Accounts are deactivated, never deleted, and a username never changes (21 CFR 11.100)."""

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "username") if obj is not None else fields

    def has_delete_permission(self, request, obj=None):
        return False
