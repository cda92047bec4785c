"""Data queries raised by monitors, and investigators' electronic signatures."""

import uuid

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

from core.models import AppendOnlyModel, BaseModel
from core.scoping import SiteScopedManager
from patients.models import Patient, Visit


class DataQuery(BaseModel):
    """A monitor's question on one field (or the whole form) of one CRF record."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ANSWERED = "answered", "Answered"
        CLOSED = "closed", "Closed"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="queries")
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="queries")
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.BigIntegerField()
    form_code = models.CharField(max_length=40)
    sequence = models.PositiveSmallIntegerField(default=1)
    field_name = models.CharField("field", max_length=80, blank=True)
    question = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    objects = SiteScopedManager()
    site_lookup = "patient__site"

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "data queries"
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self):
        return f"Query on {self.patient} {self.form_code} {self.field_name}".strip()

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.CLOSED


class QueryMessage(BaseModel):
    """One step of a query's conversation: question, answer, closing or re-opening note."""

    class Kind(models.TextChoices):
        QUESTION = "question", "Question"
        ANSWER = "answer", "Answer"
        CLOSE = "close", "Closed"
        REOPEN = "reopen", "Re-opened"

    query = models.ForeignKey(DataQuery, on_delete=models.PROTECT, related_name="messages")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    objects = SiteScopedManager()
    site_lookup = "query__patient__site"

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.query}"


class Signature(AppendOnlyModel):
    """21 CFR 11.50/11.70: who signed, when (UTC), what it means, and a SHA-256 of exactly the
    data it covers. Never changed: unlocking adds a SignatureRevocation."""

    change_refused = "A signature cannot be changed or re-pointed."
    delete_refused = "A signature cannot be deleted."

    # PostgreSQL refuses UPDATE of its rows (audit/dbtriggers.py).
    append_only = True

    class Scope(models.TextChoices):
        VISIT = "visit", "Visit"
        CASEBOOK = "casebook", "Whole casebook"

    class Meaning(models.TextChoices):
        INVESTIGATOR_APPROVAL = (
            "approval",
            "I confirm the data are accurate and complete (investigator approval).",
        )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="signatures")
    visit = models.ForeignKey(
        Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="signatures"
    )
    scope = models.CharField(max_length=10, choices=Scope.choices)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signer_full_name = models.CharField(max_length=200)
    signed_at = models.DateTimeField(auto_now_add=True)
    meaning = models.CharField(max_length=20, choices=Meaning.choices)
    record_hash = models.CharField("SHA-256 of the signed data", max_length=64)
    covered = models.JSONField(help_text="The form records covered: [[visit, form, sequence, id]].")

    objects = SiteScopedManager()
    site_lookup = "patient__site"

    class Meta:
        ordering = ["-signed_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope="casebook", visit__isnull=True)
                | models.Q(scope="visit", visit__isnull=False),
                name="signature_scope_matches_visit",
            )
        ]

    def __str__(self):
        what = f"visit {self.visit.label}" if self.visit_id else "casebook"
        return f"{self.patient} {what} signed by {self.signer_full_name}"


class SignatureRevocation(AppendOnlyModel):
    """An administrator's unlock: voids the signature so the data can be corrected."""

    change_refused = "An unlock record cannot be changed."
    delete_refused = None  # its delete() was never refused by the application

    # PostgreSQL refuses UPDATE of its rows (audit/dbtriggers.py).
    append_only = True

    signature = models.OneToOneField(Signature, on_delete=models.PROTECT, related_name="revocation")
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField()

    objects = SiteScopedManager()
    site_lookup = "signature__patient__site"

    def __str__(self):
        return f"Unlock of {self.signature}"


class AccessReview(AppendOnlyModel):
    """An administrator's periodic review of who may do what where (ICH E6(R3) 4.3.8; 21 CFR
    11.10(d)). Append-only like the audit trail: the next review adds a row. The access list
    as it stood is kept with it, so the record shows what was reviewed, not only that it was."""

    change_refused = "An access review cannot be changed."
    delete_refused = "An access review cannot be deleted."

    # PostgreSQL refuses UPDATE of its rows (audit/dbtriggers.py).
    append_only = True

    reviewed_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(help_text="What was checked, found and done.")
    access_list = models.JSONField(help_text="The user access list as reviewed, one per user.")

    class Meta:
        ordering = ["-reviewed_at", "-id"]

    def __str__(self):
        return f"Access review of {self.reviewed_at:%Y-%m-%d %H:%M} UTC"


class SignatureAgreement(AppendOnlyModel):
    """A signer's acknowledgement, given once before their first e-signature, that it is the
    legally binding equivalent of their handwritten signature and that they are accountable
    for what is signed under it (21 CFR 11.10(j), 11.100(c); STANDARDS P11-10). Append-only;
    the statement is copied so the record reads the same if the wording changes later."""

    change_refused = "A signature agreement cannot be changed."
    delete_refused = "A signature agreement cannot be deleted."

    # PostgreSQL refuses UPDATE of its rows (audit/dbtriggers.py).
    append_only = True

    STATEMENT = (
        "I agree that my electronic signature in this system is the legally binding equivalent "
        "of my handwritten signature, that I will not share my password, and that I am "
        "accountable for the data I sign with it."
    )

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signature_agreement"
    )
    agreed_at = models.DateTimeField(auto_now_add=True)
    statement = models.TextField()

    def __str__(self):
        return f"Signature agreement of {self.user} ({self.agreed_at:%Y-%m-%d %H:%M} UTC)"


class SourceVerification(AppendOnlyModel):
    """A monitor's source data verification (SDV) of one form: its values were checked against
    the source documents (ICH E6(R3) risk-based monitoring). Keeps a SHA-256 of the values as
    verified, so a later change shows the form as changed since verification. Append-only:
    verifying again adds a row."""

    change_refused = "A source verification cannot be changed."
    delete_refused = "A source verification cannot be deleted."

    # PostgreSQL refuses UPDATE of its rows (audit/dbtriggers.py).
    append_only = True

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="source_verifications"
    )
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="+")
    form_code = models.CharField(max_length=40)
    sequence = models.PositiveSmallIntegerField()
    record_id = models.BigIntegerField(help_text="The form record verified (its model: form_code).")
    record_hash = models.CharField("SHA-256 of the values verified", max_length=64)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True, help_text="e.g. which source document was used.")

    objects = SiteScopedManager()
    site_lookup = "patient__site"

    class Meta:
        ordering = ["-verified_at", "-id"]
        indexes = [models.Index(fields=["patient", "visit", "form_code", "sequence"])]

    def __str__(self):
        return f"SDV of {self.form_code} {self.sequence} ({self.patient}) by {self.verified_by}"


class AuditTrailReview(AppendOnlyModel):
    """A monitor's or administrator's record that the audit trail of a site and period was
    reviewed, what the review page found and what was done (ICH E6(R3) 4.2.3: the review is
    planned and documented; STANDARDS P11-20). Append-only; the counts are kept as they were."""

    change_refused = "An audit-trail review cannot be changed."
    delete_refused = "An audit-trail review cannot be deleted."

    # PostgreSQL refuses UPDATE of its rows (audit/dbtriggers.py).
    append_only = True

    reviewed_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    site_code = models.CharField(max_length=10, blank=True, help_text="Empty: all the sites.")
    sites_covered = models.JSONField(help_text="The site codes the reviewer's scope covered.")
    date_from = models.DateField()
    date_to = models.DateField()
    findings = models.JSONField(help_text="Each section's count on the review page.")
    note = models.TextField(help_text="What was checked, found and done.")

    class Meta:
        ordering = ["-reviewed_at", "-id"]

    def __str__(self):
        return f"Audit-trail review {self.date_from}..{self.date_to} by {self.reviewed_by}"


class SdvFormStatus(models.Model):
    """The SDV status of one live form, stored (issue 12: the worklist at 10,000 patients is
    one indexed GROUP BY for its tabs and one indexed ORDER BY/LIMIT for its page). Derived
    data, kept current in the transaction of the write that changes it (monitoring.services:
    a form's save or void, a verification); a write outside the application (raw SQL) queues
    the form in SdvRecheck by a PostgreSQL trigger and the worklist hashes it again before
    it counts. One row per live (not voided) form; `study_id` and `definition_order` are
    copied from the patient and the visit definition for the worklist's order."""

    # Derived from audited rows (the forms and the verifications), rebuilt from them at will:
    # its own writes are not clinical changes and have no trail of their own.
    audit_exempt = True

    form_code = models.CharField(max_length=40)
    record_id = models.BigIntegerField(help_text="The form record (its model: form_code).")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey("trial.StudySite", on_delete=models.PROTECT, related_name="+")
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveSmallIntegerField()
    assessment_date = models.DateField(null=True)
    study_id = models.CharField(max_length=16)
    definition_order = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10)
    # The worklist's order of statuses: changed 0, pending 1, verified 2.
    rank = models.PositiveSmallIntegerField()
    # The newest verification of the form's slot (visit, form, sequence), if any.
    verification = models.ForeignKey(
        SourceVerification, on_delete=models.PROTECT, null=True, related_name="+"
    )
    verified_at = models.DateTimeField(null=True)
    # That verification's hash when it names this record; "" when it verified another record
    # of the slot (voided since): the form is then changed whatever its values.
    verified_hash = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(help_text="When the row was last computed.")

    objects = SiteScopedManager()
    site_lookup = "site"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["form_code", "record_id"], name="sdv_one_row_per_form")
        ]
        # The worklist's ordering indexes (study id and form code in bytewise order) are made
        # by migration 0007 per database vendor (COLLATE "C" on PostgreSQL).
        indexes = [models.Index(fields=["visit", "form_code", "sequence"], name="sdv_slot")]

    def __str__(self):
        return f"SDV {self.status} of {self.form_code} #{self.record_id}"


class SdvRecheck(models.Model):
    """A form written outside the application (raw SQL: a PostgreSQL trigger on each CRF table
    and on SourceVerification queues it), whose stored SDV status must be computed again in
    Python (the values' hash) before the worklist is read. Emptied by the worklist."""

    # A work queue of derived data, not clinical data.
    audit_exempt = True

    form_code = models.CharField(max_length=40)
    record_id = models.BigIntegerField()

    def __str__(self):
        return f"SDV re-check of {self.form_code} #{self.record_id}"


class SdvCount(models.Model):
    """How many live forms of a site have each SDV status: the worklist's tabs read these few
    rows, not the forms (issue 12: the same time at any study size). Kept by database
    triggers on SdvFormStatus (migration 0008, PostgreSQL and SQLite), in the transaction
    that changes a status; striped over 8 slots (the form's id modulo 8), so concurrent
    saves at one site seldom wait on the same row. A tab's count is the sum of its slots."""

    # Derived counts of derived rows, not clinical data.
    audit_exempt = True

    SLOTS = 8

    site = models.ForeignKey("trial.StudySite", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10)
    slot = models.PositiveSmallIntegerField()
    n = models.IntegerField(default=0)

    objects = SiteScopedManager()
    site_lookup = "site"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "status", "slot"], name="sdv_count_slot")
        ]

    def __str__(self):
        return f"{self.site_id} {self.status}/{self.slot}: {self.n}"
