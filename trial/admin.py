from django.contrib import admin

from audit.admin import AuditedConfigAdmin

from .models import ConsentVersion, Protocol, SiteMembership, StudySite, VisitDefinition

# Every save here goes through trial.services.study_config_save (AuditedConfigAdmin): the
# trail records who changed what, from what to what, and the reason asked on the form.


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
