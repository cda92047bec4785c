from django import forms
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


# ---- study configuration edited in the admin: audited like clinical data -------------------

REASON_REQUIRED = (
    "Give a reason for this change: it is kept in the audit trail with the old and new values."
)


class ReasonForChangeForm(forms.ModelForm):
    """An admin change form that asks why (21 CFR 11.10(e)): required when an existing record
    is edited, not when one is added. A missing reason re-shows the form with what was typed."""

    reason_for_change = forms.CharField(
        label="Reason for change",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Required when changing an existing record; kept in the audit trail.",
    )

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is not None and not cleaned.get("reason_for_change", "").strip():
            self.add_error("reason_for_change", REASON_REQUIRED)
        return cleaned

    def reason(self) -> str:
        return self.cleaned_data.get("reason_for_change", "").strip()


class AuditedConfigAdmin(admin.ModelAdmin):
    """Saves the record and its inlines through the audited service path (trial.services), as
    the admin signed in, with the reason typed on the form. Nothing here is deleted, except
    rows whose model allows it (a site membership), and those deletions are audited too."""

    form = ReasonForChangeForm

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        from trial.services import study_config_save

        study_config_save(obj, user=request.user, reason=form.reason())

    def save_formset(self, request, form, formset, change):
        from trial.services import study_config_delete, study_config_save

        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            study_config_delete(obj, user=request.user, reason=form.reason())
        for obj in instances:
            study_config_save(obj, user=request.user, reason=form.reason())
        formset.save_m2m()
