"""Roles as Django groups, and the permission checks services make before they act.

Ozone's ladder: triage < moderator < senior moderator < admin; each role holds the one below's rights.
- triage: see the queue and cases, claim, comment, escalate (never decide, never see media);
- moderator: decide ordinary cases, reveal media;
- senior moderator: decide escalated cases, be the second reviewer (four-eyes), decide appeals,
  propose overriding automatic actions, read the audit log, see everyone's exposure and the dashboard;
- admin: hash banks, partners, users, settings and message templates.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

TRIAGE = "triage"
MODERATOR = "moderator"
SENIOR = "senior_moderator"
ADMIN = "admin"
# Highest first: a user's role in the audit log is the highest group they hold.
ROLE_ORDER = (ADMIN, SENIOR, MODERATOR, TRIAGE)
ROLE_LABELS = {ADMIN: "admin", SENIOR: "senior moderator", MODERATOR: "moderator", TRIAGE: "triage"}

# Custom permissions declared on ReviewTask.Meta.permissions.
PERM_VIEW_QUEUE = "moderation.view_queue"
PERM_DECIDE = "moderation.decide_case"
PERM_VIEW_MEDIA = "moderation.view_case_media"
PERM_COMMENT = "moderation.comment_case"
PERM_ESCALATE = "moderation.escalate_case"
PERM_SECOND_REVIEW = "moderation.second_review"
PERM_DECIDE_APPEAL = "moderation.decide_appeal"
PERM_OVERRIDE_AUTOMATION = "moderation.override_automation"
PERM_VIEW_AUDIT = "moderation.view_audit"
PERM_VIEW_TEAM_EXPOSURE = "moderation.view_team_exposure"
PERM_VIEW_DASHBOARD = "moderation.view_dashboard"
PERM_MANAGE_BANKS = "moderation.manage_banks"
PERM_MANAGE_PARTNERS = "moderation.manage_partners"
PERM_MANAGE_USERS = "moderation.manage_users"
PERM_MANAGE_SETTINGS = "moderation.manage_settings"

_TRIAGE_PERMS = ["view_queue", "comment_case", "escalate_case"]
_MODERATOR_PERMS = [*_TRIAGE_PERMS, "decide_case", "view_case_media"]
_SENIOR_PERMS = [*_MODERATOR_PERMS, "second_review", "decide_appeal", "override_automation", "view_audit",
                 "view_team_exposure", "view_dashboard"]
_ADMIN_PERMS = [*_SENIOR_PERMS, "manage_banks", "manage_partners", "manage_users", "manage_settings"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    TRIAGE: _TRIAGE_PERMS,
    MODERATOR: _MODERATOR_PERMS,
    SENIOR: _SENIOR_PERMS,
    ADMIN: _ADMIN_PERMS,
}


def roles_sync(**_kwargs: Any) -> None:
    """Create the role groups and grant their permissions (idempotent; runs after every migrate)."""
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = Permission.objects.filter(content_type__app_label="moderation", codename__in=codenames)
        group.permissions.add(*perms)


def require(user: Any, permission: str, what: str) -> None:
    """Raise ``PermissionDenied`` with a plain message unless ``user`` holds ``permission``."""
    if user is None or not user.is_authenticated or not user.has_perm(permission):
        raise PermissionDenied(f"Your role does not allow you to {what}.")


class RoleRequiredAdmin:
    """For a ``ModelAdmin`` or inline of something only a role may manage (banks, partners, API keys, users):
    every page and action needs ``role_permission`` (e.g. ``PERM_MANAGE_BANKS``) in place of Django's
    per-model permissions. The admin site still needs ``is_staff``; a subclass may refuse more (read-only)."""

    role_permission = ""

    def _role_holds(self, request: Any) -> bool:
        user = getattr(request, "user", None)
        return bool(self.role_permission) and user is not None and user.is_active and user.has_perm(
            self.role_permission)

    def has_module_permission(self, request: Any) -> bool:
        return self._role_holds(request)

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return self._role_holds(request)

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return self._role_holds(request)

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return self._role_holds(request)

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return self._role_holds(request)


def role_of(user: Any) -> str:
    """The highest console role ``user`` holds ("" for none; "superuser" for a superuser without one)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    cached = getattr(user, "_takedown_role", None)
    if cached is not None:
        return str(cached)
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in ROLE_ORDER if r in names), "superuser" if user.is_superuser else "")
    user._takedown_role = role
    return role
