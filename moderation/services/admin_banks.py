"""Hash banks managed from the console's admin pages: settings, import from a file, export; each audited.

Reading and checking an import file is the ``bank`` command's own code (``read_rows``, ``check_row``), and the
writes are ``hashing.banks``' (``bank_configure``, ``bank_import_entries``), so a file the command accepts is
accepted here with the same row errors, and matchers, feeds and the retroactive sweep see the changes alike.
Every function checks ``moderation.manage_banks`` first and names the user as the audit actor.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.management.base import CommandError
from django.db import transaction

from hashing.algorithms import ALGORITHMS
from hashing.banks import ImportRow, InvalidThresholds, bank_configure, bank_import_entries
from hashing.management.commands.bank import EXPORT_FIELDS, RowError, check_row, read_rows
from hashing.models import Bank, BankEntry
from moderation.audit import actor_for_user, audit_record
from moderation.roles import PERM_MANAGE_BANKS, require

IMPORT_FORMATS = ("jsonl", "csv")
EXPORT_FORMATS = ("jsonl", "csv")
# The row errors an import page shows and audits: the first few say what to fix; the count says the rest.
ERRORS_SHOWN = 20
PERCEPTUAL = tuple(name for name, spec in ALGORITHMS.items() if spec.perceptual)


class BankChangeRefused(ValueError):
    """A bank change that cannot be made; the message says what to fix."""


@dataclass
class ImportOutcome:
    """What an import did: entries added, already there, rows not active (skipped) and malformed rows."""

    bank: str
    added: int = 0
    unchanged: int = 0
    skipped: int = 0
    malformed: int = 0
    errors: list[str] = field(default_factory=list)  # the first ERRORS_SHOWN, "line N: what is wrong"


def _snapshot(bank: Bank) -> dict[str, Any]:
    return {"enabled": bank.enabled, "blocks_uploads": bank.blocks_uploads, "thresholds": dict(bank.thresholds),
            "on_stream_match": bank.on_stream_match}


def bank_settings_save(*, user: Any, bank_id: int, enabled: bool, blocks_uploads: bool,
                       thresholds: dict[str, int], on_stream_match: str) -> Bank:
    """Set a bank's matching on or off, whether a match blocks uploads, its own match distances (an algorithm
    left out uses its default) and what proactive scanning does on a match. Raises ``BankChangeRefused``."""
    require(user, PERM_MANAGE_BANKS, "change hash banks")
    with transaction.atomic():
        bank = Bank.objects.select_for_update().get(pk=bank_id)
        before = _snapshot(bank)
        try:
            bank_configure(bank=bank, enabled=enabled, thresholds=thresholds, on_stream_match=on_stream_match)
        except InvalidThresholds as exc:
            raise BankChangeRefused(str(exc)) from exc
        if bank.blocks_uploads != blocks_uploads:
            bank.blocks_uploads = blocks_uploads
            bank.save(update_fields=["blocks_uploads", "updated_at"])
        after = _snapshot(bank)
        if after != before:
            audit_record(actor=actor_for_user(user), action="bank.configured", object_type="bank", object_id=bank.pk,
                         data={"name": bank.name, "via": "console"}, before=before, after=after)
    return bank


def import_format(filename: str, chosen: str = "") -> str:
    """The format named, or the one the file name says (as the command decides). Raises ``BankChangeRefused``."""
    if chosen:
        if chosen not in IMPORT_FORMATS:
            raise BankChangeRefused(f"Choose the format: {' or '.join(IMPORT_FORMATS)}.")
        return chosen
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    fmt = {"jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "csv": "csv"}.get(suffix)
    if fmt is None:
        raise BankChangeRefused(f"Cannot tell the format of {filename!r} from its name; choose JSON lines or CSV.")
    return fmt


def bank_import_file(*, user: Any, bank_id: int, handle: IO[str], fmt: str, filename: str) -> ImportOutcome:
    """Add the entries of an uploaded file (the ``bank import`` command's formats: JSON lines or CSV with
    ``algorithm``, ``value`` in hex, optional ``source`` and ``status``). Malformed rows are counted and the first
    ``ERRORS_SHOWN`` named by line; the rest are imported. Entries commit batch by batch, as the command's do;
    one audit event records the counts. Raises ``BankChangeRefused`` for a file that cannot be read at all."""
    require(user, PERM_MANAGE_BANKS, "import into hash banks")
    bank = Bank.objects.get(pk=bank_id)
    outcome = ImportOutcome(bank=bank.name)

    def good_rows() -> Iterator[ImportRow]:
        for line, data in read_rows(handle, fmt):
            try:
                if isinstance(data, Exception):
                    raise data
                row = check_row(line, data)
            except RowError as exc:
                outcome.malformed += 1
                if len(outcome.errors) < ERRORS_SHOWN:
                    outcome.errors.append(f"line {line}: {exc}")
                continue
            if row is None:
                outcome.skipped += 1
                continue
            yield row

    source = f"import:{filename}"[:200]
    try:
        result = bank_import_entries(bank=bank, rows=good_rows(), source=source)
    except CommandError as exc:  # the CSV header lacks a column: nothing was read
        raise BankChangeRefused(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise BankChangeRefused("The file is not UTF-8 text; export it as UTF-8 CSV or JSON lines.") from exc
    outcome.added, outcome.unchanged = result.added, result.unchanged
    audit_record(actor=actor_for_user(user), action="bank.imported", object_type="bank", object_id=bank.pk,
                 data={"name": bank.name, "file": filename[:200], "format": fmt, "added": outcome.added,
                       "unchanged": outcome.unchanged, "skipped": outcome.skipped, "malformed": outcome.malformed,
                       "via": "console"})
    return outcome


def bank_export_lines(*, user: Any, bank_id: int, fmt: str, include_inactive: bool = False) -> Iterator[str]:
    """The bank's entries as the ``bank export`` command writes them (JSON lines, or CSV with a header), line by
    line for a streamed download. The export is audited when it starts."""
    require(user, PERM_MANAGE_BANKS, "export hash banks")
    if fmt not in EXPORT_FORMATS:
        raise BankChangeRefused(f"Choose the format: {' or '.join(EXPORT_FORMATS)}.")
    bank = Bank.objects.get(pk=bank_id)
    entries = BankEntry.objects.filter(bank=bank).order_by("id")
    if not include_inactive:
        entries = entries.filter(status=BankEntry.Status.ACTIVE)
    audit_record(actor=actor_for_user(user), action="bank.exported", object_type="bank", object_id=bank.pk,
                 data={"name": bank.name, "format": fmt, "all": include_inactive, "via": "console"})
    return _lines(entries.values_list(*EXPORT_FIELDS).iterator(chunk_size=10_000), fmt)


def _lines(rows: Iterator[tuple[Any, ...]], fmt: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt == "csv":
        writer.writerow(EXPORT_FIELDS)
        yield _drain(buffer)
    for values in rows:
        record = dict(zip(EXPORT_FIELDS, values, strict=True))
        record["created_at"] = record["created_at"].isoformat()
        if fmt == "csv":
            writer.writerow([record[f] for f in EXPORT_FIELDS])
            yield _drain(buffer)
        else:
            yield json.dumps(record) + "\n"


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
