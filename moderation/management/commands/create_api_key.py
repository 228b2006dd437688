from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hashing.management.command_user import add_user_argument
from moderation.management.acting import acting_as
from moderation.models import ApiKey
from moderation.roles import PERM_MANAGE_PARTNERS
from moderation.services.api_keys import FLAGGER_SOURCES, api_key_create


class Command(BaseCommand):
    help = ("Create an API key. The key is printed once, on the last line; only its hash is stored. Needs "
            "--user, an admin (moderation.manage_partners).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kind", required=True, choices=ApiKey.Kind.values)
        parser.add_argument("--name", required=True)
        parser.add_argument("--source", default="", choices=["", *FLAGGER_SOURCES],
                            help="For --kind flagger: the source its notices are filed as.")
        parser.add_argument("--curation", action="store_true",
                            help="For --kind platform: the key may also change banks through the HMA-compatible "
                                 "curation routes (/hma/c/...; docs/hma.md).")
        add_user_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        with acting_as(options["user"], PERM_MANAGE_PARTNERS, "create API keys") as actor:
            try:
                row, key = api_key_create(kind=options["kind"], name=options["name"], source=options["source"],
                                          curation=options["curation"], actor=actor)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        scope = " that may curate banks" if row.curation else ""
        self.stdout.write(f"Created {row.kind} key{scope} {row.name!r} (prefix {row.prefix}). Store it now; "
                          "it cannot be shown again:")
        self.stdout.write(key)
