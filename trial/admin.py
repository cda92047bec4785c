from django.contrib import admin

from .models import ConsentVersion, Protocol, SiteMembership, StudySite, VisitDefinition


class VisitDefinitionInline(admin.TabularInline):
    model = VisitDefinition
    extra = 0


@admin.register(Protocol)
class ProtocolAdmin(admin.ModelAdmin):
    list_display = ["registry_id", "short_name", "version"]
    inlines = [VisitDefinitionInline]


class SiteMembershipInline(admin.TabularInline):
    model = SiteMembership
    extra = 0


@admin.register(StudySite)
class StudySiteAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "protocol"]
    inlines = [SiteMembershipInline]


@admin.register(ConsentVersion)
class ConsentVersionAdmin(admin.ModelAdmin):
    list_display = ["protocol", "version", "effective_date", "document"]
