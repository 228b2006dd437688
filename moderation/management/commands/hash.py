from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hashing.algorithms import hash_bytes
from hashing.errors import MediaError
from moderation.management.commands._jsonlines import run_per_path


class Command(BaseCommand):
    help = "Hash image files: one JSON object per line with pdq, pdq_quality, phash, dhash, md5, sha256."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--json", action="store_true", help="JSON lines output (the only format).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["json"]:
            raise CommandError("Pass --json: the output is one JSON object per line.")
        run_per_path(options["paths"], lambda data: dict(hash_bytes(data).as_dict()), self.stdout, (MediaError,))
