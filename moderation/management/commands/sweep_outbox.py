from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from moderation.services.outbox import outbox_sweep


class Command(BaseCommand):
    help = ("Send reports whose processing never started or never finished (e.g. saved while the broker was "
            "down) to the broker again. The beat task moderation.tasks.outbox_sweep does this every minute.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, default=None, metavar="SECONDS",
                            help="only reports received at least this long ago (default: "
                                 "TAKEDOWN_OUTBOX_GRACE_SECONDS)")

    def handle(self, *args: Any, **options: Any) -> None:
        sent = outbox_sweep(grace_seconds=options["older_than"])
        self.stdout.write(f"Sent {len(sent)} unfinished reports to the broker.")
