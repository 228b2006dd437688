from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.management.commands._dates import parse_when
from moderation.services.dsa import statements_refused, statements_since, statements_submit


class Command(BaseCommand):
    help = ("Statements of reasons for the DSA Transparency Database (no personal data). --json prints one "
            "per line; --submit sends those not yet submitted to TAKEDOWN_DSA_ENDPOINT in batches of up to 100; "
            "--refused lists those the database refused (dead letters), which only --submit --retry-refused "
            "sends again.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--since", required=False, help="YYYY-MM-DD: statements created from this date")
        parser.add_argument("--json", action="store_true", help="one JSON statement per line")
        parser.add_argument("--submit", action="store_true", help="submit pending statements now")
        parser.add_argument("--retry-refused", action="store_true",
                            help="with --submit: also send again the statements the database refused")
        parser.add_argument("--refused", action="store_true",
                            help="list the refused statements: id, puid, when, the database's reason")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["retry_refused"] and not options["submit"]:
            raise CommandError("--retry-refused goes with --submit: dsa_statements --submit --retry-refused")
        if options["submit"]:
            result = statements_submit(retry_refused=options["retry_refused"])
            self.stdout.write(f"submitted {result.submitted}, failed {result.failed}, refused {result.refused}")
            for error in result.errors:
                self.stderr.write(error)
            if result.refused:
                raise CommandError(f"The Transparency Database refused {result.refused} statements: see "
                                   "dsa_statements --refused; fix them, then --submit --retry-refused.")
            if result.failed:
                raise CommandError("Some statements could not be sent; they are sent again on the next run.")
            return
        if options["refused"]:
            for statement in statements_refused():
                when = statement.submit_refused_at.isoformat(timespec="minutes") if statement.submit_refused_at else ""
                self.stdout.write(f"{statement.pk}\t{statement.puid}\t{when}\t{statement.submit_error}")
            return
        if not options["since"]:
            raise CommandError("--since is required, e.g. --since 2026-05-19")
        since = parse_when(options["since"], "--since")
        for payload in statements_since(since):
            if options["json"]:
                self.stdout.write(json.dumps(payload, sort_keys=True, separators=(",", ":")))
            else:
                self.stdout.write(f"{payload['puid']} {payload['application_date']} {payload['decision_ground']}")
