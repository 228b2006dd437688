"""Roles as Django groups, and the permission checks services make before they act."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

TRIAGE = "triage"
MODERATOR = "moderator"
SENIOR = "senior_moderator"
ADMIN = "admin"

# Custom permissions declared on ReviewTask.Meta.permissions.
PERM_VIEW_QUEUE = "moderation.view_queue"
PERM_DECIDE = "moderation.decide_case"
PERM_VIEW_MEDIA = "moderation.view_case_media"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    TRIAGE: ["view_queue"],
    MODERATOR: ["view_queue", "decide_case", "view_case_media"],
    SENIOR: ["view_queue", "decide_case", "view_case_media"],
    ADMIN: ["view_queue", "decide_case", "view_case_media"],
}


def roles_sync(**_kwargs: Any) -> None:
    """Create the role groups with their permissions (idempotent; runs after every migrate)."""
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = Permission.objects.filter(content_type__app_label="moderation", codename__in=codenames)
        group.permissions.add(*perms)


def require(user: Any, permission: str, what: str) -> None:
    """Raise ``PermissionDenied`` with a plain message unless ``user`` holds ``permission``."""
    if user is None or not user.is_authenticated or not user.has_perm(permission):
        raise PermissionDenied(f"Your role does not allow you to {what}.")
