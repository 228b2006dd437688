"""The append-only, hash-chained audit log."""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One state change. ``hash`` = SHA-256 over the previous event's hash and this event's content.

    Rows are never updated or deleted (on PostgreSQL a trigger enforces it); ``verify_audit``
    recomputes the chain. ``data`` never holds media, PINs, emails or keys.
    """

    created_at = models.DateTimeField()
    actor = models.CharField(max_length=100)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=50)
    data = models.JSONField(default=dict)
    # Who acted in which role, from where, why, and the state before and after. Empty on events
    # written before these fields existed: the canonical encoding leaves empty ones out, so those
    # events' hashes still verify.
    role = models.CharField(max_length=50, blank=True, db_index=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # The request that caused the event (its X-Request-ID, also in the log lines and the tasks it enqueued);
    # null on events recorded outside a request and on events written before this field existed.
    request_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001 - null: no request
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object"),
                   models.Index(fields=["actor", "id"], name="audit_actor"),
                   models.Index(fields=["created_at"], name="audit_created")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """A single row locked while appending, so concurrent writers extend the chain one at a time."""

    last_hash = models.CharField(max_length=64)
    last_event_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit head at event {self.last_event_id}"
