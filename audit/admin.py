from django.contrib import admin
from django.contrib.admin.views.main import ChangeList

from .models import AuditEntry, AuthEvent
from .selectors import hide_identifiers


class AuditChangeList(ChangeList):
    """The page of rows, with identifier values hidden as on the audit-trail page (one
    decision per page, not a query per row)."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(hide_identifiers(self.result_list, user=request.user))


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
    # Never old/new values: a search by value would tell whether a phone number is on file.
    search_fields = ["object_repr", "user_name", "field_name"]

    def get_changelist(self, request, **kwargs):
        return AuditChangeList

    def get_object(self, request, object_id, from_field=None):
        entry = super().get_object(request, object_id, from_field)
        if entry is not None:
            entry = next(hide_identifiers([entry], user=request.user))
        return entry

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
