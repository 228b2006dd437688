"""``manage.py exchange_export --format stopncii|threatexchange --bank NAME [--output FILE]``.

- ``stopncii``: one StopNCII hash record per line (JSON lines: ``signalType``, ``hashValue``,
  ``hashStatus``, ``caseNumbers``, ``lastModtimestamp``, ``CSPFeedbacks``); ``--all`` adds withdrawn
  and deleted entries with their status. ``manage.py stopncii import`` reads it back.
- ``threatexchange``: ``<signal type> <hash>`` lines that python-threatexchange's file exchange (and so
  Hasher-Matcher-Actioner) reads; active entries only, the format has no statuses.

Entries of algorithms the format has no signal type for (pHash, dHash; SHA-256 for StopNCII) are
counted and left out.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.stopncii.records import export_records
from exchange.threatexchange_format import ExportCounts, export_lines
from hashing.models import Bank, BankEntry

FORMATS = ("stopncii", "threatexchange")


class Command(BaseCommand):
    help = "Export a bank as StopNCII hash records or as a ThreatExchange signal file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=FORMATS, required=True)
        parser.add_argument("--bank", required=True)
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")
        parser.add_argument("--all", action="store_true",
                            help="stopncii: include withdrawn and deleted entries, with their hashStatus.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            bank = Bank.objects.get(name=options["bank"])
        except Bank.DoesNotExist:
            known = ", ".join(Bank.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"There is no bank named {options['bank']!r} (banks: {known}).") from None
        if options["all"] and options["format"] == "threatexchange":
            raise CommandError("--all applies to --format stopncii: a ThreatExchange file has no statuses.")
        if options["format"] == "stopncii":
            lines, counts = self._stopncii(bank, include_inactive=options["all"])
        else:
            counts = ExportCounts()
            lines = export_lines(bank, counts)
        if options["output"]:
            self._write_file(Path(options["output"]), lines)
        else:
            for line in lines:
                self.stdout.write(line, ending="")
        self.stderr.write(f"Exported {counts.written} entries of {bank.name} as {options['format']}; "
                          f"{counts.unsupported} of algorithms the format has no signal type for were left out.")

    @staticmethod
    def _stopncii(bank: Bank, *, include_inactive: bool) -> tuple[Iterator[str], ExportCounts]:
        counts = ExportCounts()
        entries = BankEntry.objects.filter(bank=bank)
        if not include_inactive:
            entries = entries.filter(status=BankEntry.Status.ACTIVE)

        def lines() -> Iterator[str]:
            for record in export_records(bank, include_inactive=include_inactive):
                counts.written += 1
                yield json.dumps(record.to_json(), separators=(",", ":")) + "\n"
            counts.unsupported = entries.count() - counts.written

        return lines(), counts

    @staticmethod
    def _write_file(path: Path, lines: Iterator[str]) -> None:
        """Write beside the target and rename, so a reader never sees half a file."""
        try:
            handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
        except OSError as exc:
            raise CommandError(f"Cannot write to {path.parent}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.writelines(lines)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
