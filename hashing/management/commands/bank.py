"""``manage.py bank list|export|import|configure``: hash banks as JSON lines or CSV with hex hashes.

Import reads one entry per row, ``algorithm`` and ``value`` (hex) and optionally ``source`` and
``status``; a row that cannot be used is reported with its line number on stderr and the rest are
imported. On PostgreSQL rows go in through COPY, ``hashing.banks.COPY_BATCH_ROWS`` per transaction and
``--writers`` transactions at once; elsewhere through bulk inserts, ``hashing.banks.IMPORT_BATCH_ROWS`` per
transaction. Each batch writes its ``BankChange`` rows, so matchers pick the entries up as batches commit.

Configure enables or disables a bank or sets its per-algorithm match thresholds
(``hashing.banks.bank_configure``); matching uses the new settings at the matcher's next refresh.

Import and configure change banks: they need ``--user``, an active user holding ``moderation.manage_banks``
(the admin role; checked by its name, since hashing does not import moderation). List and export only
read, and stay open to whoever can run ``manage.py`` (docs/security.md, "Admin rights").
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Q
from tqdm import tqdm

from hashing.algorithms import ALGORITHMS
from hashing.banks import ImportRow, InvalidThresholds, bank_configure, bank_get_or_create, bank_import_entries
from hashing.management.command_user import add_user_argument, command_user
from hashing.management.output import Unended
from hashing.models import Bank, BankEntry

FORMATS = ("jsonl", "csv")
EXPORT_FIELDS = ["algorithm", "value", "status", "source", "created_at"]
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
MANAGE_BANKS = "moderation.manage_banks"  # moderation.roles.PERM_MANAGE_BANKS, by its name
CHANGES = {"import": "import into banks", "configure": "configure banks"}  # subcommand: what it does
# Batches a PostgreSQL import writes at once: one connection each, while this process parses the next rows.
# Two nearly double the rate on a 2-core server, where a single writer spends its time in index updates
# (docs/benchmarks.md, "HMA"); more gain little and hold more connections.
IMPORT_WRITERS = 2
_HEX = re.compile("[0-9a-f]*")
# Read once: the choices' ``values`` is rebuilt on every access, which a million rows notice.
_STATUSES = tuple(BankEntry.Status.values)
_ACTIVE = BankEntry.Status.ACTIVE.value




class RowError(ValueError):
    """A row that cannot be imported; the message says what to fix."""


def check_row(line: int, data: Any) -> ImportRow | None:
    """The row as an ``ImportRow``; None for a row whose status is not active. Raises ``RowError``."""
    if not isinstance(data, dict):
        raise RowError("expected an object with 'algorithm' and 'value'")
    algorithm = str(data.get("algorithm") or "").strip().lower()
    value = str(data.get("value") or "").strip().lower()
    spec = ALGORITHMS.get(algorithm)
    if spec is None:
        raise RowError(f"unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    if len(value) != spec.hex_length or not _HEX.fullmatch(value):
        raise RowError(f"a {algorithm} value is {spec.hex_length} hex characters; got {value[:80]!r}")
    status = data.get("status")
    if status:
        status = str(status).strip().lower()
        if status not in _STATUSES:
            raise RowError(f"unknown status {status!r}; use one of {', '.join(_STATUSES)}")
        if status != _ACTIVE:
            return None
    return ImportRow(line=line, algorithm=algorithm, value=value, source=str(data.get("source") or "")[:200])


def parse_thresholds(texts: list[str]) -> dict[str, int]:
    """``["pdq=24", "phash=8"]`` as ``{"pdq": 24, "phash": 8}``. Raises ``CommandError``."""
    thresholds: dict[str, int] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip().lower()
        if not sep or not name or not value.strip().isdecimal():
            raise CommandError(f"a threshold is ALGORITHM=DISTANCE, e.g. pdq=24; got {text!r}")
        thresholds[name] = int(value)
    return thresholds


def read_rows(handle: IO[str], fmt: str) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed row or the exception)`` for each data row of the file."""
    if fmt == "jsonl":
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, RowError(f"not JSON: {exc.msg}")
        return
    # csv.reader with the header zipped on here: DictReader's per-row checks cost a second per million rows.
    reader = csv.reader(handle)
    header = next(reader, [])
    missing = {"algorithm", "value"} - set(header)
    if missing:
        raise CommandError(f"the CSV header must name the columns algorithm and value (missing: "
                           f"{', '.join(sorted(missing))})")
    for row in reader:
        if row:
            yield reader.line_num, dict(zip(header, row, strict=False))


class Command(BaseCommand):
    help = "List, export, import or configure hash banks (JSON lines or CSV, hashes in hex)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="list|export|import|configure")
        listing = sub.add_parser("list", help="Every bank with its entry counts.")
        listing.add_argument("--json", action="store_true", help="One JSON object per bank.")
        export = sub.add_parser("export", help="Write a bank's entries.")
        export.add_argument("bank")
        export.add_argument("--format", choices=FORMATS, default="jsonl")
        export.add_argument("--output", "-o", help="File to write (default: standard output).")
        export.add_argument("--all", action="store_true", help="Include withdrawn and deleted entries.")
        imp = sub.add_parser("import", help="Add entries to a bank from a file.")
        imp.add_argument("bank")
        imp.add_argument("path")
        imp.add_argument("--format", choices=FORMATS, help="Default: from the file extension.")
        imp.add_argument("--source", help="Source of rows that name none (default: import:<file name>).")
        imp.add_argument("--create", action="store_true", help="Create the bank if there is none.")
        imp.add_argument("--kind", choices=Bank.Kind.values, default=Bank.Kind.LOCAL,
                         help="Kind of a bank made by --create.")
        imp.add_argument("--progress", action="store_true", help="Show the progress bar even when not on a terminal.")
        imp.add_argument("--writers", type=int, default=IMPORT_WRITERS, metavar="N",
                         help=f"Batches written at once on PostgreSQL, each on its own connection "
                              f"(default {IMPORT_WRITERS}); 1 writes them one after another.")
        conf = sub.add_parser("configure", help="Enable or disable a bank, or set its match thresholds.")
        conf.add_argument("bank")
        state = conf.add_mutually_exclusive_group()
        state.add_argument("--enable", dest="enabled", action="store_const", const=True, default=None,
                           help="Match against this bank.")
        state.add_argument("--disable", dest="enabled", action="store_const", const=False,
                           help="Stop matching against this bank (its entries are kept).")
        conf.add_argument("--on-stream-match", choices=Bank.OnStreamMatch.values, default=None,
                          help="What proactive scanning (the AT Protocol firehose scanner) does when a new post "
                               "matches this bank: 'case' opens a case for moderators (the default); 'takedown' "
                               "takes the post down at once with no human step, audited and sampled for review. "
                               "Use 'takedown' only for a bank of confirmed NCII.")
        limits = conf.add_mutually_exclusive_group()
        limits.add_argument("--threshold", action="append", metavar="ALGORITHM=DISTANCE",
                            help="A perceptual hash's match distance for this bank, e.g. pdq=24; repeat for "
                                 "several. Replaces the bank's thresholds: algorithms not named use their default.")
        limits.add_argument("--default-thresholds", action="store_true",
                            help="Drop the bank's own thresholds: every algorithm uses its default.")
        for parser_of_change in (imp, conf):
            add_user_argument(parser_of_change)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] in CHANGES:
            command_user(options.get("user"), MANAGE_BANKS, CHANGES[options["action"]])
        getattr(self, f"_{options['action']}")(options)

    def _list(self, options: dict[str, Any]) -> None:
        banks = Bank.objects.annotate(
            active=Count("entries", filter=Q(entries__status=BankEntry.Status.ACTIVE)),
            inactive=Count("entries", filter=~Q(entries__status=BankEntry.Status.ACTIVE)))
        for bank in banks:
            row = {"name": bank.name, "kind": bank.kind, "enabled": bank.enabled,
                   "blocks_uploads": bank.blocks_uploads, "active_entries": bank.active,
                   "inactive_entries": bank.inactive, "thresholds": bank.thresholds,
                   "on_stream_match": bank.on_stream_match}
            if options["json"]:
                self.stdout.write(json.dumps(row))
            else:
                self.stdout.write(f"{bank.name}\t{bank.kind}\t{'enabled' if bank.enabled else 'disabled'}\t"
                                  f"{row['active_entries']} active\t{row['inactive_entries']} withdrawn or deleted")

    def _configure(self, options: dict[str, Any]) -> None:
        bank = self._bank(options["bank"])
        thresholds = {} if options["default_thresholds"] else (
            parse_thresholds(options["threshold"]) if options["threshold"] else None)
        if options["enabled"] is None and thresholds is None and options["on_stream_match"] is None:
            raise CommandError("Nothing to change: pass --enable, --disable, --threshold, --default-thresholds or "
                               "--on-stream-match.")
        try:
            bank = bank_configure(bank=bank, enabled=options["enabled"], thresholds=thresholds,
                                  on_stream_match=options["on_stream_match"])
        except InvalidThresholds as exc:
            raise CommandError(str(exc)) from exc
        limits = ", ".join(f"{name}={value}" for name, value in sorted(bank.thresholds.items())) or "defaults"
        policy = f", on stream match: {bank.on_stream_match}" if options["on_stream_match"] else ""
        self.stdout.write(f"{bank.name}: {'enabled' if bank.enabled else 'disabled'}, thresholds: {limits}{policy}")

    def _bank(self, name: str) -> Bank:
        try:
            return Bank.objects.get(name=name)
        except Bank.DoesNotExist:
            known = ", ".join(Bank.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"There is no bank named {name!r} (banks: {known}).") from None

    def _export(self, options: dict[str, Any]) -> None:
        bank = self._bank(options["bank"])
        entries = BankEntry.objects.filter(bank=bank).order_by("id")
        if not options["all"]:
            entries = entries.filter(status=BankEntry.Status.ACTIVE)
        rows = entries.values_list(*EXPORT_FIELDS).iterator(chunk_size=10_000)
        out: Any = open(options["output"], "w", newline="") if options["output"] else Unended(self.stdout)
        try:
            writer = csv.writer(out) if options["format"] == "csv" else None
            if writer:
                writer.writerow(EXPORT_FIELDS)
            count = 0
            for values in rows:
                record = dict(zip(EXPORT_FIELDS, values, strict=True))
                record["created_at"] = record["created_at"].isoformat()
                if writer:
                    writer.writerow([record[f] for f in EXPORT_FIELDS])
                else:
                    out.write(json.dumps(record) + "\n")
                count += 1
        finally:
            if options["output"]:
                out.close()
        self.stderr.write(f"Exported {count} entries of {bank.name}.")

    def _import(self, options: dict[str, Any]) -> None:
        path = Path(options["path"])
        fmt = options["format"] or _EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise CommandError(f"Cannot tell the format of {path.name}; pass --format jsonl or --format csv.")
        if options["writers"] < 1:
            raise CommandError(f"--writers is how many batches are written at once: 1 or more, not "
                               f"{options['writers']}.")
        if options["create"]:
            bank = bank_get_or_create(name=options["bank"], kind=options["kind"])
        else:
            bank = self._bank(options["bank"])
        try:
            with path.open(newline="") as handle:
                total = sum(1 for _ in handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        errors: list[str] = []
        skipped = 0
        show = options["progress"] or sys.stderr.isatty()
        # The bar counts lines whose batch has committed (malformed and skipped lines before it included).
        err = Unended(self.stderr)
        progress = tqdm(total=total, unit="row", file=err, disable=not show,
                        desc=f"importing into {bank.name}")

        def good_rows(handle: IO[str]) -> Iterator[ImportRow]:
            nonlocal skipped
            for line, data in read_rows(handle, fmt):
                try:
                    if isinstance(data, Exception):
                        raise data
                    row = check_row(line, data)
                except RowError as exc:
                    errors.append(f"line {line}: {exc}")
                    progress.write(errors[-1], file=err)
                    continue
                if row is None:
                    skipped += 1
                    continue
                yield row

        def committed(batch: list[ImportRow]) -> None:
            progress.update(max(0, batch[-1].line - progress.n))

        started = time.monotonic()
        with path.open(newline="", encoding="utf-8", errors="replace") as handle, progress:
            result = bank_import_entries(bank=bank, rows=good_rows(handle), writers=options["writers"],
                                         source=options["source"] or f"import:{path.name}"[:200], on_batch=committed)
            progress.update(total - progress.n)
        elapsed = time.monotonic() - started
        self.stdout.write(f"Imported into {bank.name}: {result.added} added, {result.unchanged} already there, "
                          f"{skipped} not active (skipped), {len(errors)} malformed rows reported above.")
        rows = result.added + result.unchanged + skipped + len(errors)
        self.stderr.write(f"{rows} rows in {elapsed:.1f} s ({rows / max(elapsed, 1e-9):,.0f} rows/s).")
