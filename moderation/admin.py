"""Admin pages for what admins must see and act on: webhook dead letters (with replay), statements, appeals;
and users, groups and their API tokens, which need the admin role's ``manage_users``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from moderation.models import Appeal, StatementOfReasons, WebhookDelivery
from moderation.roles import PERM_MANAGE_USERS, RoleRequiredAdmin
from moderation.services.dsa import statements_submit
from moderation.services.webhooks import delivery_replay

# Users, their groups (the roles) and their API tokens: Django and DRF register these pages; they are
# registered again here so that managing them needs PERM_MANAGE_USERS, not Django's per-model permissions.
for _model in (User, Group, TokenProxy):
    admin.site.unregister(_model)


@admin.register(User)
class TakedownUserAdmin(RoleRequiredAdmin, UserAdmin):  # type: ignore[type-arg,unused-ignore]
    role_permission = PERM_MANAGE_USERS


@admin.register(Group)
class TakedownGroupAdmin(RoleRequiredAdmin, GroupAdmin):  # type: ignore[type-arg,unused-ignore]
    role_permission = PERM_MANAGE_USERS


@admin.register(TokenProxy)
class TakedownTokenAdmin(RoleRequiredAdmin, TokenAdmin):  # type: ignore[type-arg,unused-ignore]
    role_permission = PERM_MANAGE_USERS  # a token is a user's credential: whoever makes one can act as them


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


class SubmissionFilter(admin.SimpleListFilter):
    """Where a statement stands with the DSA Transparency Database; "refused" are the dead letters."""

    title = "submission"
    parameter_name = "submission"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("pending", "Pending"), ("submitted", "Submitted"), ("refused", "Refused (dead letter)")]

    def queryset(self, request: Any, queryset: Any) -> Any:
        if self.value() == "pending":
            return queryset.filter(submitted_at__isnull=True, submit_refused_at__isnull=True)
        if self.value() == "submitted":
            return queryset.filter(submitted_at__isnull=False)
        if self.value() == "refused":
            return queryset.filter(submitted_at__isnull=True, submit_refused_at__isnull=False)
        return queryset


@admin.register(StatementOfReasons)
class StatementOfReasonsAdmin(admin.ModelAdmin):  # type: ignore[type-arg,unused-ignore]
    list_display = ("puid", "decision", "created_at", "uploader_notified_at", "submitted_at", "submit_refused_at",
                    "submit_error")
    list_filter = (SubmissionFilter,)
    readonly_fields = ("decision", "item", "puid", "payload", "created_at", "uploader_notified_at", "submitted_at",
                       "submit_refused_at", "submit_error")
    actions = ["send_again"]

    @admin.action(description="Send the selected refused statements to the Transparency Database again")
    def send_again(self, request: Any, queryset: Any) -> None:
        if not settings.TAKEDOWN_DSA_ENDPOINT:
            self.message_user(request, "TAKEDOWN_DSA_ENDPOINT is not set: nothing can be sent.", messages.ERROR)
            return
        ids = list(queryset.filter(submitted_at__isnull=True).values_list("pk", flat=True))
        result = statements_submit(ids=ids, retry_refused=True)
        text = f"Sent {result.submitted} of {len(ids)}; refused again {result.refused}."
        if result.errors:
            text += f" {result.errors[-1][:300]}"
        self.message_user(request, text, messages.SUCCESS if result.submitted == len(ids) else messages.WARNING)

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
