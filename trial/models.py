from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from core.models import BaseModel
from core.scoping import SiteScopedManager

# How many inclusion and how many exclusion criteria a protocol may list: the eligibility CRF
# keeps one answer slot per criterion (patients.Eligibility).
CRITERION_SLOTS = 10


class Protocol(BaseModel):
    registry_id = models.CharField("registry id", max_length=32, unique=True)
    short_name = models.CharField(max_length=40)
    title = models.CharField(max_length=400)
    version = models.CharField(max_length=20)
    # Follow-up "at least one year": the schedule can be extended in steps of this many days.
    extension_step_days = models.PositiveSmallIntegerField(default=60)
    reminder_lead_days = models.PositiveSmallIntegerField(
        default=7, help_text="Days before a visit window opens that coordinators are reminded."
    )
    # The protocol's inclusion and exclusion criteria, as the CDISC trial design (TI domain)
    # lists them: [{"code": "INCL01", "category": "INCLUSION", "text": "..."}, ...]. The
    # eligibility CRF asks exactly these (patients.Eligibility keeps one answer per code).
    eligibility_criteria = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["registry_id"]

    def criteria_by_slot(self) -> dict[str, dict]:
        """{answer slot of patients.Eligibility ("incl01"): criterion}, in protocol order."""
        return {c["code"].lower(): c for c in self.eligibility_criteria}

    def __str__(self):
        return f"{self.registry_id} ({self.short_name} v{self.version})"


class StudySite(BaseModel):
    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="sites")
    code = models.CharField(
        max_length=8, unique=True, help_text="Prefix of study ids at this site, e.g. BEN."
    )
    name = models.CharField(max_length=200)

    objects = SiteScopedManager()
    site_lookup = ""

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} - {self.name}"


class SiteMembership(models.Model):
    """A user works at a site. Roles are Django groups; this decides which patients they see."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="site_memberships"
    )
    site = models.ForeignKey(StudySite, on_delete=models.PROTECT, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    # Access, not clinical data: taking a user off a site deletes the row (so the one scoping
    # join, memberships__user, stays the whole access rule), and the deletion is audited with
    # the old values; the database records a deletion made in SQL too (audit/dbtriggers.py).
    audit_deletable = True

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "site"], name="unique_site_membership")
        ]

    def __str__(self):
        return f"{self.user} @ {self.site.code}"


class VisitDefinition(models.Model):
    class Kind(models.TextChoices):
        SCREENING = "screening", "Screening"
        PROCEDURE = "procedure", "Procedure day"
        SCHEDULED = "scheduled", "Scheduled follow-up"
        UNSCHEDULED = "unscheduled", "Unscheduled"
        END = "end", "End of study"

    class Anchor(models.TextChoices):
        CONSENT = "consent", "Consent date"
        PROCEDURE = "procedure", "Procedure date"
        NONE = "none", "None (any time)"

    protocol = models.ForeignKey(Protocol, on_delete=models.CASCADE, related_name="visits")
    code = models.CharField(max_length=10)
    name = models.CharField(max_length=100)
    order = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    anchor = models.CharField(max_length=10, choices=Anchor.choices, default=Anchor.NONE)
    target_day = models.IntegerField(null=True, blank=True, help_text="Days from the anchor.")
    window_before = models.PositiveSmallIntegerField(default=0, help_text="Days.")
    window_after = models.PositiveSmallIntegerField(default=0, help_text="Days.")
    # [{"code": "semen_analysis", "repeat": 3}, ...]: form codes of core.crf's registry.
    forms = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["protocol", "order"]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "code"], name="unique_visit_code"),
        ]

    def __str__(self):
        return f"{self.code} - {self.name}"

    @property
    def expected_forms(self) -> list[tuple[str, int]]:
        return [(f["code"], int(f.get("repeat", 1))) for f in self.forms]

    def window_label(self) -> str:
        if self.target_day is None:
            return "any time"
        if self.window_before == self.window_after:
            return (
                f"day {self.target_day:+d} ± {self.window_before} d"
                if self.window_before
                else (f"day {self.target_day:+d}")
            )
        return f"day {self.target_day:+d} (-{self.window_before}/+{self.window_after} d)"


def consent_document_path(instance, filename):
    return f"consent-versions/{instance.protocol.short_name}/{instance.version}/{filename}"


class ConsentVersion(BaseModel):
    protocol = models.ForeignKey(
        Protocol, on_delete=models.PROTECT, related_name="consent_versions"
    )
    version = models.CharField("version label", max_length=20)
    effective_date = models.DateField()
    document = models.FileField(
        "approved document",
        upload_to=consent_document_path,
        blank=True,
        help_text="The ethics-approved consent form (PDF).",
    )

    class Meta:
        ordering = ["protocol", "-effective_date"]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "version"], name="unique_consent_version")
        ]

    # What a patient signed: once a consent refers to this version, these never change (a new
    # version with a later effective date supersedes it). PostgreSQL refuses it too (trial
    # migration 0003).
    FIXED_ONCE_SIGNED = ("version", "effective_date", "document")

    def __str__(self):
        return f"Consent v{self.version} (effective {self.effective_date:%d %b %Y})"

    def is_signed(self) -> bool:
        """A consent (signed, withdrawn or not) refers to this version."""
        return self.pk is not None and self.consents.exists()

    def changed_fixed_fields(self) -> list[str]:
        """The fixed-once-signed fields this unsaved edit changes, if any consent refers to it."""
        if not self.is_signed():
            return []
        stored = type(self)._base_manager.get(pk=self.pk)
        return [
            name
            for name in self.FIXED_ONCE_SIGNED
            if str(getattr(stored, name) or "") != str(getattr(self, name) or "")
        ]

    def clean(self):
        super().clean()
        changed = self.changed_fixed_fields()
        if changed:
            label = type(self)._base_manager.values_list("version", flat=True).get(pk=self.pk)
            raise ValidationError({name: signed_version_message(label) for name in changed})


def signed_version_message(label: str) -> str:
    return (
        f"Patients have signed consent version {label}: its version label, "
        "effective date and approved document can no longer be changed, or every existing "
        "consent would show a form its patient did not sign. To change them, add a new "
        "consent version with a later effective date: it supersedes this one."
    )
