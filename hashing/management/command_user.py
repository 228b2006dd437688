"""Who runs a management command that changes what only a role may manage (banks, partners, API keys).

A shell has no logged-in user, so such a command names one: ``--user USERNAME``, an active user holding
the permission (a console role's, e.g. ``moderation.manage_banks``; checked by its name, so the hashing
app needs nothing from moderation). The commands that write audit events record that user as the actor.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser


def add_user_argument(parser: CommandParser) -> None:
    parser.add_argument("--user", metavar="USERNAME", default=None,
                        help="The account doing this (required): an active user whose role allows it (admin); "
                             "audit events name it as the actor.")


def command_user(username: str | None, permission: str, what: str) -> Any:
    """The active user named ``username`` if they hold ``permission``; else ``CommandError`` saying why."""
    if not username:
        raise CommandError(f"To {what}, name who is doing it: --user USERNAME (an active user holding the "
                           f"{permission} permission, which the admin role grants).")
    model = get_user_model()
    try:
        user = model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        raise CommandError(f"--user: there is no user named {username!r}.") from None
    if not user.is_active:
        raise CommandError(f"--user: {username!r} is not active.")
    if not user.has_perm(permission):
        raise CommandError(f"--user: {username!r} may not {what}: that needs the {permission} permission "
                           f"(the admin role).")
    return user
