from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.management.commands._dates import parse_when
from moderation.services.transparency import report_as_csv, transparency_report


class Command(BaseCommand):
    help = "DSA Art. 15 transparency report for a period: notices, actions, complaints, median times."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD, included")
        parser.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD, excluded")
        parser.add_argument("--format", choices=["json", "csv"], default="json")

    def handle(self, *args: Any, **options: Any) -> None:
        start, end = parse_when(options["start"], "--from"), parse_when(options["end"], "--to")
        if end <= start:
            raise CommandError("--to must be after --from.")
        report = transparency_report(start=start, end=end)
        if options["format"] == "csv":
            self.stdout.write(report_as_csv(report), ending="")
        else:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
