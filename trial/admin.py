from django.contrib import admin

from core.admin import ReasonForChangeForm

from .models import ConsentVersion, Protocol, SiteMembership, StudySite, VisitDefinition
from .services import study_config_delete, study_config_save

# Every save here goes through trial.services.study_config_save (AuditedConfigAdmin): the
# trail records who changed what, from what to what, and the reason asked on the form.


class AuditedConfigAdmin(admin.ModelAdmin):
    """Saves the record and its inlines through the audited service path (trial.services), as
    the admin signed in, with the reason typed on the form. Nothing here is deleted, except
    rows whose model allows it (a site membership), and those deletions are audited too."""

    form = ReasonForChangeForm

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        study_config_save(obj, user=request.user, reason=form.reason())

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            study_config_delete(obj, user=request.user, reason=form.reason())
        for obj in instances:
            study_config_save(obj, user=request.user, reason=form.reason())
        formset.save_m2m()


class VisitDefinitionInline(admin.TabularInline):
    model = VisitDefinition
    extra = 0
    # Visits refer to their visit definition: a visit is never removed from a protocol.
    can_delete = False


@admin.register(Protocol)
class ProtocolAdmin(AuditedConfigAdmin):
    list_display = ["registry_id", "short_name", "version"]
    inlines = [VisitDefinitionInline]


class SiteMembershipInline(admin.TabularInline):
    model = SiteMembership
    extra = 0
    # Taking a user off a site deletes the membership; the trail keeps its old values.
    can_delete = True


@admin.register(StudySite)
class StudySiteAdmin(AuditedConfigAdmin):
    list_display = ["code", "name", "protocol"]
    inlines = [SiteMembershipInline]


@admin.register(ConsentVersion)
class ConsentVersionAdmin(AuditedConfigAdmin):
    list_display = ["protocol", "version", "effective_date", "document"]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and obj.is_signed():
            return (*fields, *ConsentVersion.FIXED_ONCE_SIGNED)
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.is_signed():
            # Say why the fields are read-only, above them.
            (name, options), *rest = fieldsets
            options = {**options, "description": signed_version_note(obj)}
            return [(name, options), *rest]
        return fieldsets


def signed_version_note(version: ConsentVersion) -> str:
    return (
        f"Patients have signed version {version.version}: its version label, effective date "
        "and approved document are read-only, because every existing consent shows them as "
        "what was signed. To change them, add a new consent version with a later effective "
        "date; it supersedes this one for new consents."
    )
