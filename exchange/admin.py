"""Admin views of the exchange: partner policies, key scopes, remotes (never their key), and feedback
beside the bank entry it is about. Bank entries need the admin role's ``manage_banks``, the rest its
``manage_partners`` (``RoleRequiredAdmin``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from exchange.models import HashFeedback, KeyScope, PartnerPolicy, Remote, SharedEntry
from hashing.models import BankEntry
from moderation.roles import PERM_MANAGE_BANKS, PERM_MANAGE_PARTNERS, RoleRequiredAdmin


@admin.register(PartnerPolicy)
class PartnerPolicyAdmin(RoleRequiredAdmin, admin.ModelAdmin):
    role_permission = PERM_MANAGE_PARTNERS
    list_display = ("partner", "auto_action", "updated_at")
    filter_horizontal = ("allowed_banks",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # changes go through `manage.py partner policy`, which applies them to banks and audits them


@admin.register(KeyScope)
class KeyScopeAdmin(RoleRequiredAdmin, admin.ModelAdmin):
    role_permission = PERM_MANAGE_PARTNERS  # API keys are outsiders' credentials: partner management
    list_display = ("api_key", "write_bank", "feedback")
    readonly_fields = ("api_key", "read_banks", "write_bank", "feedback")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Remote)
class RemoteAdmin(RoleRequiredAdmin, admin.ModelAdmin):
    role_permission = PERM_MANAGE_PARTNERS
    list_display = ("partner", "base_url", "bank", "enabled", "records_applied", "last_synced_at", "last_error")
    # The key the remote issued us is never shown; the cursor is the sync's checkpoint, not for editing.
    exclude = ("api_key",)
    readonly_fields = ("partner", "base_url", "bank", "public_key", "page_size", "cursor", "feedback_pushed_until",
                       "records_applied", "last_synced_at", "last_error")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # `manage.py partner remote` reads the key from a file


@admin.register(HashFeedback)
class HashFeedbackAdmin(RoleRequiredAdmin, admin.ModelAdmin):
    role_permission = PERM_MANAGE_PARTNERS
    list_display = ("entry", "partner", "verdict", "tags", "updated_at")
    list_filter = ("verdict", "partner")
    readonly_fields = ("entry", "partner", "verdict", "tags", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FeedbackInline(RoleRequiredAdmin, admin.TabularInline):
    model = HashFeedback
    role_permission = PERM_MANAGE_PARTNERS  # what partners said: not shown to a bank manager without it
    fields = ("partner", "verdict", "tags", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SharedEntryInline(RoleRequiredAdmin, admin.StackedInline):
    model = SharedEntry
    role_permission = PERM_MANAGE_PARTNERS
    fields = ("partner", "tags", "case_ref")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BankEntry)
class BankEntryAdmin(RoleRequiredAdmin, admin.ModelAdmin):
    """Bank entries with what partners say about them. Read-only: bank writes go through hashing.banks."""

    role_permission = PERM_MANAGE_BANKS
    list_display = ("bank", "algorithm", "short_value", "status", "source", "updated_at")
    list_filter = ("bank", "algorithm", "status")
    search_fields = ("value",)
    readonly_fields = ("bank", "algorithm", "value", "status", "source", "created_at", "updated_at")
    inlines = [SharedEntryInline, FeedbackInline]

    @admin.display(description="value")
    def short_value(self, obj: BankEntry) -> str:
        return obj.value[:16] + "…"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
