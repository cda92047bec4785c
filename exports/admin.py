from django.contrib import admin

from .models import PdfJob


@admin.register(PdfJob)
class PdfJobAdmin(admin.ModelAdmin):
    """Read-only: jobs are made by the app and built by the worker."""

    list_display = ["created_at", "requested_by", "kind", "status", "progress_done", "error"]
    list_filter = ["kind", "status"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
