"""``manage.py sync_partners``: pull every configured remote from its checkpoint, push our feedback."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.sync import SyncResult, sync_all


class Command(BaseCommand):
    help = "Pull hashes from each remote Takedown instance from its checkpoint, then push our feedback."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--remote", action="append", help="Only this partner's remote (repeat).")
        parser.add_argument("--max-pages", type=int, help="Stop after this many pages per remote.")

    def handle(self, *args: Any, **options: Any) -> None:
        outcome = sync_all(names=options["remote"], max_pages=options["max_pages"])
        if not outcome:
            self.stdout.write("No enabled remotes to sync: add one with 'manage.py partner remote' (docs/exchange.md).")
            return
        failed = []
        for name, result in outcome.items():
            if isinstance(result, SyncResult):
                self.stdout.write(f"{name}: {result.pages} pages, {result.records} records, "
                                  f"{result.feedback_pushed} feedback pushed"
                                  f"{'' if result.complete else ' (more to pull)'}")
            else:
                failed.append(name)
                self.stderr.write(f"{name}: failed: {result}")
        if failed:
            raise CommandError(f"sync failed for {', '.join(failed)}")
