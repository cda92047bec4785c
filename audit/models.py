from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

from core.models import AppendOnlyModel
from core.roles import Role, has_role
from core.scoping import SiteScopedManager


class AuditEntry(AppendOnlyModel):
    """One row per changed field (or one per action): who, when (UTC), what, old, new, why.

    Append-only: the application refuses to update or delete a row, and on PostgreSQL a
    trigger refuses UPDATE/DELETE from plain SQL too (migration 0002)."""

    change_refused = "Audit entries cannot be changed."
    delete_refused = "Audit entries cannot be deleted."

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Changed"
        VOID = "void", "Voided"
        WITHDRAW = "withdraw", "Consent withdrawn"
        DELETE = "delete", "Deleted"
        QUERY = "query", "Data query"
        SIGN = "sign", "Signed"
        UNLOCK = "unlock", "Unlocked"

    timestamp = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    # Snapshot, so the trail reads the same if a user is later renamed.
    user_name = models.CharField(max_length=150)
    action = models.CharField(max_length=10, choices=Action.choices)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.BigIntegerField()
    object_repr = models.CharField(max_length=200)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, related_name="audit_entries"
    )
    form_code = models.CharField(max_length=40, blank=True)
    field_name = models.CharField(max_length=80, blank=True)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    reason = models.TextField(blank=True)
    # Where the change came from (21 CFR 11.10(h)): the browser's address and user agent, or
    # "host: program" for a job or command. Database defaults, because the PostgreSQL trigger
    # inserts rows too (audit/dbtriggers.py).
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, db_default="")
    channel = models.CharField(max_length=200, blank=True, db_default="")
    # The hash chain (audit/chain.py), set by the database as the row is inserted (migration
    # 0007's trigger), whatever the application sends: the patient's chain or "study", the
    # row's place in it, the previous row's SHA-256 and this row's. Ids are not commit order;
    # chain_seq is.
    chain = models.CharField(max_length=40, blank=True, db_default="", editable=False)
    chain_seq = models.BigIntegerField(null=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, db_default="", editable=False)
    row_hash = models.CharField(max_length=64, blank=True, db_default="", editable=False)

    # Site scope (core.scoping) through the row's patient. Rows without a patient (database-
    # level changes, the study configuration, access reviews) are for administrators only.
    objects = SiteScopedManager()
    site_lookup = "patient__site"

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(fields=["content_type", "object_id"]),
            # The trail page's keyset order (newest first: scanned backwards), issue 12.
            models.Index(fields=["timestamp", "id"], name="audit_trail_keyset"),
            # The audit review's "changes outside the application" (the capture trigger's rows,
            # few): its count and rows in a period read only them.
            models.Index(
                fields=["timestamp", "id"],
                condition=models.Q(user_name__startswith="database:"),
                name="audit_outside_app",
            ),
        ]
        constraints = [
            # Two writers can never fork a chain, even if the trigger's lock were bypassed.
            models.UniqueConstraint(fields=["chain", "chain_seq"], name="audit_chain_seq_unique")
        ]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return (
            f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.user_name} {self.action} {self.object_repr}"
        )

    @classmethod
    def sees_unsited_rows(cls, user) -> bool:
        return has_role(user, Role.ADMIN)

    @property
    def is_study_configuration(self) -> bool:
        """A row of the protocol, sites, memberships, visit definitions, consent versions or a
        user's roles (audit.selectors.study_configuration_rows), which has no patient."""
        ct = self.content_type
        return ct.app_label == "trial" or (
            (ct.app_label, ct.model) == ("auth", "user") and self.field_name == "roles"
        )


class AuditChainHead(models.Model):
    """The last link of each audit chain, written only by the chain triggers (once per
    INSERT statement): rows cut from a chain's end leave no gap, but the head remembers them,
    and the next row continues after it."""

    chain = models.CharField(max_length=40, primary_key=True)
    seq = models.BigIntegerField()
    row_hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "audit_chainhead"

    def __str__(self):
        return f"{self.chain} #{self.seq} {self.row_hash[:16]}"


class AuthEvent(AppendOnlyModel):
    """Logins, failed logins, logouts, lockouts and changes of roles or sites (ICH E6(R3)
    4.2.2: account and access changes are kept). Append-only like AuditEntry."""

    change_refused = "Authentication events cannot be changed."
    delete_refused = "Authentication events cannot be deleted."

    class Kind(models.TextChoices):
        LOGIN = "login", "Logged in"
        LOGIN_FAILED = "login_failed", "Failed login"
        LOGOUT = "logout", "Logged out"
        LOCKOUT = "lockout", "Account locked"
        SIGNATURE_FAILED = "signature_failed", "Failed signature (wrong password)"
        ROLE_CHANGE = "role_change", "Roles changed"
        SITE_CHANGE = "site_change", "Sites changed"
        ACCOUNT_CHANGE = "account_change", "Account activated/deactivated"
        # Two-factor sign-in (accounts.services).
        SECOND_FACTOR_VERIFIED = "2fa_verified", "Second factor verified"
        SECOND_FACTOR_FAILED = "2fa_failed", "Wrong second-factor code"
        SECOND_FACTOR_ENROLLED = "2fa_enrolled", "Authenticator enrolled"
        RECOVERY_CODE_USED = "2fa_recovery_used", "Recovery code used"
        SECOND_FACTOR_RESET = "2fa_reset", "Second factor reset by an admin"

    timestamp = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    username = models.CharField(max_length=150)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="Who made the change.")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, db_default="")
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]

    def __str__(self):
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.kind} {self.username}"
