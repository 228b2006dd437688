"""Admin pages for what admins must see and act on: webhook dead letters (with replay), statements, appeals."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages

from moderation.models import Appeal, StatementOfReasons, WebhookDelivery
from moderation.services.webhooks import delivery_replay


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg,unused-ignore]
    list_display = ("id", "event", "status", "attempts", "last_error", "created_at", "delivered_at")
    list_filter = ("status", "event")
    readonly_fields = ("action", "idempotency_key", "event", "url", "payload", "status", "attempts", "last_error",
                       "created_at", "delivered_at")
    actions = ["replay"]

    @admin.action(description="Replay the selected dead letters")
    def replay(self, request: Any, queryset: Any) -> None:
        results = [delivery_replay(delivery_id=d.pk) for d in queryset.filter(status=WebhookDelivery.Status.DEAD)]
        delivered = sum(1 for d in results if d.status == WebhookDelivery.Status.DELIVERED)
        self.message_user(request, f"Replayed {len(results)}; {delivered} delivered.",
                          messages.SUCCESS if delivered == len(results) else messages.WARNING)

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(StatementOfReasons)
class StatementOfReasonsAdmin(admin.ModelAdmin):  # type: ignore[type-arg,unused-ignore]
    list_display = ("puid", "decision", "created_at", "uploader_notified_at", "submitted_at", "submit_error")
    readonly_fields = ("decision", "item", "puid", "payload", "created_at", "uploader_notified_at", "submitted_at",
                       "submit_error")

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(Appeal)
class AppealAdmin(admin.ModelAdmin):  # type: ignore[type-arg,unused-ignore]
    list_display = ("id", "decision", "state", "created_at", "decided_at", "decided_by")
    list_filter = ("state",)
    readonly_fields = ("decision", "statement_of_reasons", "appellant_email", "statement", "state", "decided_by",
                       "outcome_note", "created_at", "decided_at")

    def has_add_permission(self, request: Any) -> bool:
        return False
