"""The audit trail's one table: :class:`AuditEvent`, append-only.

The model refuses updates and deletes in Python (:class:`~alliance.web.audit.errors.AppendOnlyError`),
and database triggers (:mod:`alliance.web.audit.triggers`) refuse them in the database too. Events
are written by :class:`alliance.web.audit.log.AuditLog`.

The table was created by the ``capture`` app and keeps its name, ``capture_auditevent``: the model
moved here with ``SeparateDatabaseAndState`` (``capture`` 0005 and ``audit`` 0001), so an existing
database keeps its table, its rows and its triggers untouched.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .errors import AppendOnlyError


class AuditEventQuerySet(models.QuerySet):
    """Audit events can be added and read, never changed or removed."""

    def update(self, **kwargs):
        raise AppendOnlyError("audit events are append-only: they cannot be updated")

    def delete(self):
        raise AppendOnlyError("audit events are append-only: they cannot be deleted")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("audit events are append-only: they cannot be updated")

    def _raw_delete(self, using):
        raise AppendOnlyError("audit events are append-only: they cannot be deleted")

    update.queryset_only = True
    delete.queryset_only = True
    _raw_delete.queryset_only = True


class AuditEvent(models.Model):
    """One create, change, delete or export: who, when, what, and the values before and after.

    ``old`` and ``new`` hold the object's recorded fields (``None`` for a create's ``old`` and a
    delete's ``new``). ``hash`` and ``previous_hash`` chain the events of each study
(:mod:`alliance.web.audit.chain`). The user and study are kept as plain ids without a database constraint, so
    that deleting a user or a study neither fails nor rewrites the trail.
    """

    class Action(models.TextChoices):
        CREATE = "create"
        CHANGE = "change"
        DELETE = "delete"
        EXPORT = "export"  # data left the database (a download from the web app); ``new`` says what
        LOGIN = "login"  # a user logged in (Django also updates their last_login)
        LOGOUT = "logout"
        LOGIN_FAILED = "login_fail"  # ``new`` holds a keyed hash of the username tried, not the name

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False,
                             null=True, blank=True, related_name="+")
    actor = models.CharField(max_length=200, help_text='Who, in words: "cli:import", "user:alice", …')
    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    model = models.CharField(max_length=100, help_text='Model label, e.g. "capture.itemresponse".')
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300, blank=True,
                                   help_text="What the object was, readable after it is deleted.")
    study = models.ForeignKey("capture.Study", on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True,
                              related_name="audit_events")
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    # The hash chain (alliance.web.audit.chain); empty on the events written before it existed.
    hash = models.CharField(max_length=64, blank=True, default="", editable=False,
                            help_text="SHA-256 of the event's fields and previous_hash.")
    previous_hash = models.CharField(max_length=64, blank=True, default="", editable=False,
                                     help_text="The hash of the study's previous event; empty for the first.")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        db_table = "capture_auditevent"  # created by the capture app; see the module docstring
        ordering = ["at", "id"]
        # The names Django gave these indexes when the table was created, kept so that no migration renames them.
        indexes = [models.Index(fields=["model", "object_id"], name="capture_aud_model_2f7d89_idx"),
                   models.Index(fields=["study", "at"], name="capture_aud_study_i_56940c_idx"),
                   # A chain's head (its last event by id) is read at every write.
                   models.Index(fields=["study", "id"], name="audit_chain_head_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.model} {self.object_repr or self.object_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only: they cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events are append-only: they cannot be deleted")
