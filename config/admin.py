from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

from core.roles import Role, has_role


class EdcAdminSite(admin.AdminSite):
    site_header = "NOA-MSC EDC administration"
    site_title = "EDC admin"

    def has_permission(self, request):
        # The Django admin is for the Admin role only; data entry happens in the app.
        user = request.user
        return user.is_active and user.is_staff and has_role(user, Role.ADMIN)


class EdcAdminConfig(AdminConfig):
    default_site = "config.admin.EdcAdminSite"
