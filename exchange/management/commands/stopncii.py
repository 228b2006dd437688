"""``manage.py stopncii fetch|submit|feedback|import``: exchange hashes with StopNCII.org.

- ``fetch``: new and changed StopNCII hashes into the local bank (``TAKEDOWN_STOPNCII_BANK``), resuming
  from the checkpoint an interrupted run left (``TAKEDOWN_STOPNCII_STATE_FILE``);
- ``submit``: entries of ``TAKEDOWN_STOPNCII_SUBMIT_BANK`` that became active since the last submit;
- ``feedback``: our verdicts (Blocked / NotBlocked / PendingReview) on StopNCII's hashes;
- ``import FILE``: StopNCII records from a JSON lines file (or one JSON document), malformed records
  reported by line number and the rest imported.

Keys and the endpoint come from the environment (docs/exchange.md, "StopNCII and ThreatExchange").
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from exchange.stopncii.client import FetchPage, StopNCIIClient
from exchange.stopncii.errors import StopNCIIError
from exchange.stopncii.jobs import (
    ApplyResult,
    records_apply,
    stopncii_bank,
    stopncii_fetch,
    stopncii_send_feedback,
    stopncii_submit,
)
from exchange.stopncii.records import HashRecord, RecordError, read_records
from exchange.stopncii.store import StateFile
from hashing.management.output import Unended
from hashing.models import Bank

IMPORT_BATCH_RECORDS = 5000  # records per transaction, as hashing.banks.IMPORT_BATCH_ROWS




class Command(BaseCommand):
    help = "Fetch hashes from StopNCII.org, submit ours, send feedback, or import a StopNCII file."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="fetch|submit|feedback|import")
        fetch = sub.add_parser("fetch", help="Fetch new and changed hashes into the StopNCII bank.")
        fetch.add_argument("--bank", help="Local bank to write (default: TAKEDOWN_STOPNCII_BANK).")
        fetch.add_argument("--page-size", type=int, help="Records per page (default: TAKEDOWN_STOPNCII_PAGE_SIZE).")
        fetch.add_argument("--restart", action="store_true",
                           help="Forget the checkpoint and read everything again (safe: nothing is duplicated).")
        submit = sub.add_parser("submit", help="Submit entries that became active in the submit bank.")
        submit.add_argument("--bank", help="Bank to submit from (default: TAKEDOWN_STOPNCII_SUBMIT_BANK).")
        submit.add_argument("--tag", action="append", default=[], help="A tag sent with every hash (repeatable).")
        submit.add_argument("--settle-seconds", type=int,
                            help="Only changes older than this (default: TAKEDOWN_MATCH_GAP_TIMEOUT_SECONDS).")
        feedback = sub.add_parser("feedback", help="Send our verdicts on StopNCII's hashes.")
        feedback.add_argument("--bank", help="Bank whose verdicts to send (default: TAKEDOWN_STOPNCII_BANK).")
        imp = sub.add_parser("import", help="Import StopNCII records from a JSON lines or JSON file.")
        imp.add_argument("path")
        imp.add_argument("--bank", help="Bank to write (default: TAKEDOWN_STOPNCII_BANK, made if missing).")
        for sub_parser in (fetch, imp):
            sub_parser.add_argument("--progress", action="store_true",
                                    help="Show progress even when standard error is not a terminal.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except StopNCIIError as exc:
            raise CommandError(str(exc)) from exc

    def _progress(self, options: dict[str, Any], **kwargs: Any) -> tqdm[Any]:
        show = options.get("progress") or sys.stderr.isatty()
        return tqdm(file=Unended(self.stderr), disable=not show, **kwargs)

    def _existing_bank(self, name: str) -> Bank:
        try:
            return Bank.objects.get(name=name)
        except Bank.DoesNotExist:
            known = ", ".join(Bank.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"There is no bank named {name!r} (banks: {known}).") from None

    def _report_errors(self, result: ApplyResult) -> None:
        """Each error on its own line, in the order of the file (``line N: ...``, ``record N: ...``)."""
        def position(error: str) -> tuple[str, int]:
            kind, _, rest = error.partition(" ")
            number = rest.partition(":")[0]
            return (kind, int(number)) if number.isdigit() else (kind, 0)

        for error in sorted(result.errors, key=position):
            self.stderr.write(error)

    def _summary(self, result: ApplyResult) -> str:
        return (f"{result.added} added, {result.unchanged} already there, {result.withdrawn} withdrawn or deleted, "
                f"{result.unsupported} of signal types we do not match, {result.feedback_recorded} partner "
                f"verdicts recorded, {result.feedback_unknown_source} verdicts from CSPs that are not our partners, "
                f"{len(result.errors)} malformed records reported above")

    def _fetch(self, options: dict[str, Any]) -> None:
        bank = stopncii_bank(options["bank"])
        client = StopNCIIClient.from_settings()
        progress = self._progress(options, unit="record", desc=f"fetching into {bank.name}")

        def on_page(page: FetchPage) -> None:
            progress.update(len(page.records) + len(page.rejected))

        with progress:
            result = stopncii_fetch(client=client, bank=bank, state=StateFile.from_settings(),
                                    page_size=options["page_size"], restart=options["restart"], on_page=on_page)
        self._report_errors(result)
        resumed = " (resumed from the checkpoint)" if result.resumed else ""
        self.stdout.write(f"Fetched {result.pages} pages into {bank.name}{resumed}: {self._summary(result)}.")

    def _submit(self, options: dict[str, Any]) -> None:
        bank = self._existing_bank(options["bank"] or settings.TAKEDOWN_STOPNCII_SUBMIT_BANK)
        result = stopncii_submit(client=StopNCIIClient.from_settings(), bank=bank, state=StateFile.from_settings(),
                                 settle_seconds=options["settle_seconds"], tags=options["tag"])
        self.stdout.write(f"Submitted {result.submitted} hashes of {bank.name} in {result.batches} requests; "
                          f"{result.unsupported} of algorithms StopNCII does not carry were left out.")

    def _feedback(self, options: dict[str, Any]) -> None:
        bank = self._existing_bank(options["bank"] or settings.TAKEDOWN_STOPNCII_BANK)
        result = stopncii_send_feedback(client=StopNCIIClient.from_settings(), bank=bank,
                                        state=StateFile.from_settings())
        self.stdout.write(f"Sent {result.sent} verdicts on {bank.name}; {result.unsupported} on hashes of "
                          "algorithms StopNCII does not carry were left out.")

    def _import(self, options: dict[str, Any]) -> None:
        path = Path(options["path"])
        bank = stopncii_bank(options["bank"])
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                total = sum(1 for _ in handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        result = ApplyResult()
        with path.open(encoding="utf-8", errors="replace") as handle, \
                self._progress(options, total=total, unit="line", desc=f"importing into {bank.name}") as progress:
            batch: list[tuple[str, HashRecord]] = []
            for where, item in self._counted(read_records(handle), progress):
                if isinstance(item, RecordError):
                    result.errors.append(f"{where}: {item}")
                    continue
                batch.append((where, item))
                if len(batch) >= IMPORT_BATCH_RECORDS:
                    result.add(records_apply(bank=bank, records=batch, source=f"import:{path.name}"[:200]))
                    batch = []
            if batch:
                result.add(records_apply(bank=bank, records=batch, source=f"import:{path.name}"[:200]))
        self._report_errors(result)
        self.stdout.write(f"Imported {path.name} into {bank.name}: {self._summary(result)}.")

    @staticmethod
    def _counted(items: Iterator[tuple[str, HashRecord | RecordError]],
                 progress: tqdm[Any]) -> Iterator[tuple[str, HashRecord | RecordError]]:
        for where, item in items:
            if where.startswith("line "):
                progress.n = int(where.split()[1])
                progress.refresh()
            yield where, item
