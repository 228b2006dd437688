from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.management.commands._dates import parse_when
from moderation.services.dsa import statements_since, statements_submit


class Command(BaseCommand):
    help = ("Statements of reasons for the DSA Transparency Database (no personal data). --json prints one "
            "per line; --submit sends those not yet submitted to TAKEDOWN_DSA_ENDPOINT in batches of up to 100.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--since", required=False, help="YYYY-MM-DD: statements created from this date")
        parser.add_argument("--json", action="store_true", help="one JSON statement per line")
        parser.add_argument("--submit", action="store_true", help="submit pending statements now")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["submit"]:
            result = statements_submit()
            self.stdout.write(f"submitted {result.submitted}, failed {result.failed}")
            for error in result.errors:
                self.stderr.write(error)
            if result.failed:
                raise CommandError("Some statements were refused; they are retried on the next run.")
            return
        if not options["since"]:
            raise CommandError("--since is required, e.g. --since 2026-05-19")
        since = parse_when(options["since"], "--since")
        for payload in statements_since(since):
            if options["json"]:
                self.stdout.write(json.dumps(payload, sort_keys=True, separators=(",", ":")))
            else:
                self.stdout.write(f"{payload['puid']} {payload['application_date']} {payload['decision_ground']}")
