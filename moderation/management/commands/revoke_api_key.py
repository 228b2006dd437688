from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hashing.management.command_user import add_user_argument
from moderation.management.acting import acting_as
from moderation.roles import PERM_MANAGE_PARTNERS
from moderation.services.api_keys import api_key_revoke


class Command(BaseCommand):
    help = ("Revoke an API key by its prefix (the part after td_, printed by create_api_key). Audited; the "
            "web processes refuse it within TAKEDOWN_API_KEY_CACHE_SECONDS. Needs --user, an admin "
            "(moderation.manage_partners).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="The key's prefix, or the whole key (only its prefix is read).")
        add_user_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        with acting_as(options["user"], PERM_MANAGE_PARTNERS, "revoke API keys") as actor:
            try:
                row = api_key_revoke(prefix=options["prefix"], actor=actor)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(f"Revoked {row.kind} key {row.name!r} (prefix {row.prefix}); web processes refuse it "
                          f"within {settings.TAKEDOWN_API_KEY_CACHE_SECONDS} s.")
