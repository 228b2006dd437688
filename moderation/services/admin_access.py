"""API keys and users managed from the console's admin pages; each change checked and audited.

Keys are made and revoked by ``moderation.services.api_keys`` (the ``create_api_key`` and ``revoke_api_key``
commands' service), under the same permission as those commands (``moderation.manage_partners``); a new key is
returned once, to be shown once, and only its prefix reaches the audit log. Roles are the groups of
``moderation.roles``; managing them and deactivating accounts needs ``moderation.manage_users``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from moderation.audit import actor_for_user, audit_record
from moderation.models import ApiKey
from moderation.roles import ADMIN, PERM_MANAGE_PARTNERS, PERM_MANAGE_USERS, ROLE_ORDER, require
from moderation.services.api_keys import api_key_create, api_key_revoke


class AccessChangeRefused(ValueError):
    """A change to keys, users or roles that cannot be made; the message says why and what to do."""


def console_api_key_create(*, user: Any, kind: str, name: str, source: str = "",
                           curation: bool = False) -> tuple[ApiKey, str]:
    """A platform or flagger key (partner keys are made with their scope: ``exchange.partners.partner_key_create``,
    the partner's page). Returns the row and the key, which is never shown again."""
    require(user, PERM_MANAGE_PARTNERS, "create API keys")
    if kind not in (ApiKey.Kind.PLATFORM, ApiKey.Kind.FLAGGER):
        raise AccessChangeRefused("Here you can create platform and flagger keys; a partner's key is made with "
                                  "its scope on the partner's page (Admin, Partners).")
    try:
        return api_key_create(kind=kind, name=name, source=source, curation=curation, actor=actor_for_user(user))
    except ValueError as exc:
        raise AccessChangeRefused(str(exc).replace("--source", "a source").replace("(--curation)", "")) from exc


def console_api_key_revoke(*, user: Any, key_id: int) -> ApiKey:
    """Revoke a key (of any kind) by its id; every web process refuses it within the key cache's time."""
    require(user, PERM_MANAGE_PARTNERS, "revoke API keys")
    prefix = ApiKey.objects.values_list("prefix", flat=True).get(pk=key_id)
    try:
        return api_key_revoke(prefix=prefix, actor=actor_for_user(user))
    except ValueError as exc:
        raise AccessChangeRefused(str(exc)) from exc


def _active_admins() -> int:
    return get_user_model()._default_manager.filter(is_active=True, groups__name=ADMIN).distinct().count()


def user_role_set(*, user: Any, target_id: int, role: str, held: bool) -> Any:
    """Give ``role`` to the account ``target_id`` (``held``) or take it away. The last active admin keeps the
    admin role, so the console always has someone who can manage users."""
    require(user, PERM_MANAGE_USERS, "change users' roles")
    if role not in ROLE_ORDER:
        raise AccessChangeRefused(f"There is no role {role!r}; the roles are {', '.join(ROLE_ORDER)}.")
    model = get_user_model()
    with transaction.atomic():
        target = model._default_manager.select_for_update().get(pk=target_id)
        group = Group.objects.get(name=role)
        had = target.groups.filter(pk=group.pk).exists()
        if had == held:
            return target
        if not held and role == ADMIN and target.is_active and _active_admins() <= 1:
            raise AccessChangeRefused("This is the last active admin: give another account the admin role "
                                      "before taking it from this one.")
        before = sorted(target.groups.filter(name__in=ROLE_ORDER).values_list("name", flat=True))
        if held:
            target.groups.add(group)
        else:
            target.groups.remove(group)
        after = sorted(target.groups.filter(name__in=ROLE_ORDER).values_list("name", flat=True))
        audit_record(actor=actor_for_user(user), action="user.role_added" if held else "user.role_removed",
                     object_type="user", object_id=target.pk, data={"role": role},
                     before={"roles": before}, after={"roles": after})
    return target


def user_active_set(*, user: Any, target_id: int, active: bool) -> Any:
    """Deactivate an account (it can no longer log in, and its sessions and tokens stop working at their next
    request) or reactivate it. Nobody deactivates themselves, and the last active admin stays active."""
    require(user, PERM_MANAGE_USERS, "deactivate users")
    model = get_user_model()
    with transaction.atomic():
        target = model._default_manager.select_for_update().get(pk=target_id)
        if target.is_active == active:
            return target
        if not active and target.pk == user.pk:
            raise AccessChangeRefused("You cannot deactivate your own account; ask another admin.")
        if not active and target.groups.filter(name=ADMIN).exists() and _active_admins() <= 1:
            raise AccessChangeRefused("This is the last active admin: give another account the admin role first.")
        target.is_active = active
        target.save(update_fields=["is_active"])
        audit_record(actor=actor_for_user(user), action="user.reactivated" if active else "user.deactivated",
                     object_type="user", object_id=target.pk, before={"is_active": not active},
                     after={"is_active": active})
    return target
