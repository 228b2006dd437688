"""Commands that change what only a role may manage run as the user named by ``--user``
(``hashing.management.command_user``): checked first, then named as the actor of the audit events they
write, with that user's role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hashing.management.command_user import command_user
from moderation.audit import actor_for_user, audit_request_context


@contextmanager
def acting_as(username: str | None, permission: str, what: str) -> Iterator[str]:
    """Refuse (``CommandError``) unless ``username`` is an active user holding ``permission``; inside, the
    audit actor to record (``user:<id>``), and events recorded as that actor carry the user's role."""
    user = command_user(username, permission, what)
    with audit_request_context(user=user, source_ip=None):
        yield actor_for_user(user)
