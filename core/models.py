import uuid

from django.conf import settings
from django.db import models


class BaseModel(models.Model):
    """Every table of ours: a public uuid for URLs (integer pks stay internal) and who/when."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        abstract = True


class AppendOnlyModel(models.Model):
    """A record that is never changed once written (audit entries, signatures, reviews...):
    `save()` of a stored row raises PermissionError(`change_refused`), and `delete()` raises
    PermissionError(`delete_refused`) unless that is None. Each subclass states its own
    messages. The database refuses the same in SQL where a trigger is installed (the
    `append_only = True` flag, audit/dbtriggers.py). Abstract: no field, no table."""

    change_refused: str = "This record cannot be changed."
    delete_refused: str | None = "This record cannot be deleted."

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError(self.change_refused)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.delete_refused is not None:
            raise PermissionError(self.delete_refused)
        return super().delete(*args, **kwargs)


class FormSubmission(models.Model):
    """A create form's one-time token, taken when the form is first saved (core.submissions).
    A second POST of the same form (a double click, a resubmit after a lost response) finds
    the token taken and is sent to what the first one created, instead of creating it again.
    Not clinical data: what was created is audited where it was created."""

    token = models.UUIDField(unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Where the first submission sent the user (the new patient's page, the log...).
    result_url = models.CharField(max_length=500, blank=True)
    result_label = models.CharField(max_length=200, blank=True)

    def __str__(self):
        return f"{self.token} -> {self.result_url}"
