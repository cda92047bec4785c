from django.contrib import admin

from .models import AuditEntry, AuthEvent


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the trail can be read here, never changed."""

    list_display = [
        "timestamp",
        "user_name",
        "action",
        "object_repr",
        "field_name",
        "old_value",
        "new_value",
        "reason",
    ]
    list_filter = ["action", "form_code"]
    search_fields = ["object_repr", "user_name", "field_name"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuthEvent)
class AuthEventAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "kind", "username", "actor_name", "ip_address", "detail"]
    list_filter = ["kind"]
    search_fields = ["username", "detail"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
