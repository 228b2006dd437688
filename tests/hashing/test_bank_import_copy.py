"""Bulk import at database speed: ``manage.py bank import`` and ``hashing.banks.bank_import_entries``.

On PostgreSQL (``DATABASE_URL=postgres://...``, CI's second pass) these go through COPY and, outside a
transaction, several writer connections at once; on SQLite through batched bulk inserts. Either way the
same rows, change log, hook calls and counts must come out, so every test here runs on both.
"""

from __future__ import annotations

import csv
import io
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from hashing.banks import (
    ImportRow,
    bank_add_entries,
    bank_get_or_create,
    bank_import_entries,
    bank_withdraw_entries,
)
from hashing.matcher import Matcher
from hashing.models import BankChange, BankEntry
from moderation.models import AuditEvent
from tests.conftest import AS_ADMIN

pytestmark = pytest.mark.usefixtures("admin_user")

# Ids the entries-added hook was called with, in the tests that name ``record_added`` as the hook.
ADDED: list[int] = []


def record_added(entry_ids: list[int]) -> None:
    ADDED.extend(entry_ids)


def pdq(seed: int) -> str:
    return f"{random.Random(seed).getrandbits(256):064x}"


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["algorithm", "value", "source"])
        writer.writerows(rows)
    return path


def changed_ids() -> list[int]:
    return sorted(BankChange.objects.values_list("entry_id", flat=True))


@pytest.mark.django_db
def test_an_import_adds_new_values_once_reactivates_withdrawn_ones_and_reports_bad_rows(tmp_path: Path) -> None:
    bank = bank_get_or_create(name="bulk")
    kept, withdrawn = bank_add_entries(bank=bank, hashes=[("pdq", pdq(1)), ("pdq", pdq(2))], source="case:TD-1")
    bank_withdraw_entries(bank=bank, hashes=[("pdq", pdq(2))])
    before = set(BankChange.objects.values_list("id", flat=True))
    audit_events = AuditEvent.objects.count()
    path = write_csv(tmp_path / "bulk.csv", [
        ["pdq", pdq(1), ""],                       # 2: already active: unchanged
        ["pdq", pdq(2).upper(), ""],               # 3: withdrawn: re-activated
        ["pdq", pdq(3), "partner:x"],              # 4: new
        ["pdq", "12345", ""],                      # 5: too short
        ["pdq", pdq(3), "partner:y"],              # 6: the same value again in the file: counted once
        ["sha1", "0" * 40, ""],                    # 7: unknown algorithm
        ["md5", "ab" * 16, ""],                    # 8: new, exact hash
    ])

    out, err = run("bank", "import", *AS_ADMIN, "bulk", str(path))

    assert "line 5: a pdq value is 64 hex characters" in err
    assert "line 7: unknown algorithm 'sha1'" in err
    assert "3 added, 2 already there, 0 not active (skipped), 2 malformed rows" in out
    entries = {e.value: e for e in BankEntry.objects.filter(bank=bank)}
    assert set(entries) == {pdq(1), pdq(2), pdq(3), "ab" * 16}
    assert all(e.status == BankEntry.Status.ACTIVE for e in entries.values())
    assert entries[pdq(1)].source == "case:TD-1" and entries[pdq(1)].pk == kept.pk
    assert entries[pdq(2)].pk == withdrawn.pk
    assert entries[pdq(3)].source == "partner:y"  # the last row of a value wins, as before
    # One change row per entry added or re-activated, nothing for the entry that was already active.
    new_changes = BankChange.objects.exclude(id__in=before)
    assert sorted(new_changes.values_list("entry_id", flat=True)) == sorted(
        [withdrawn.pk, entries[pdq(3)].pk, entries["ab" * 16].pk])
    # As documented (docs/security.md): bank imports keep the bank change log, not audit events.
    assert AuditEvent.objects.count() == audit_events

    out, _ = run("bank", "import", *AS_ADMIN, "bulk", str(path))  # again: nothing new, no new change rows
    assert "0 added, 5 already there" in out
    assert BankChange.objects.exclude(id__in=before).count() == 3


@pytest.mark.django_db
def test_a_just_imported_hash_matches_through_a_matcher_built_before_the_import(tmp_path: Path) -> None:
    bank = bank_get_or_create(name="bulk")
    bank_add_entries(bank=bank, hashes=[("pdq", pdq(10))], source="t")
    matcher = Matcher()
    matcher.refresh()
    path = write_csv(tmp_path / "more.csv", [["pdq", pdq(seed), ""] for seed in range(11, 61)])

    run("bank", "import", *AS_ADMIN, "bulk", str(path))
    bank_withdraw_entries(bank=bank, hashes=[("pdq", pdq(30))])  # inside the imported id range

    assert matcher.refresh() == 51  # 50 added, 1 withdrawn
    for seed in (11, 42, 60):
        entry = BankEntry.objects.get(value=pdq(seed))
        assert matcher.search("pdq", [pdq(seed)], 0)[0] == [(entry.pk, 0)]
    assert matcher.search("pdq", [pdq(30)], 0)[0] == []
    assert matcher.status().entries["pdq"] == 50


@pytest.mark.django_db(transaction=True)
def test_parallel_writers_commit_every_batch_with_its_change_rows_and_hook_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL, outside a transaction, batches go through COPY on several connections at once."""
    import hashing.banks

    writers: set[str] = set()
    copy_batch = hashing.banks._copy_batch

    def watched(*args: Any) -> None:
        writers.add(threading.current_thread().name)
        copy_batch(*args)

    monkeypatch.setattr(hashing.banks, "_copy_batch", watched)
    bank = bank_get_or_create(name="bulk")
    bank_add_entries(bank=bank, hashes=[("pdq", pdq(100)), ("pdq", pdq(101))], source="t")
    bank_withdraw_entries(bank=bank, hashes=[("pdq", pdq(101))])
    start = BankChange.objects.count()
    rows = [ImportRow(line=i + 2, algorithm="pdq", value=pdq(100 + i)) for i in range(40)]
    rows.append(ImportRow(line=42, algorithm="pdq", value=pdq(120)))  # a duplicate, in another batch
    rows[5].source = "partner:tab\there, back\\slash"  # COPY's own escapes must not reach the row
    committed: list[int] = []
    ADDED.clear()

    with override_settings(TAKEDOWN_BANK_ENTRIES_ADDED_HOOK=f"{__name__}.record_added"):
        result = bank_import_entries(bank=bank, rows=rows, source="import:x", batch_rows=7, writers=3,
                                     on_batch=lambda batch: committed.append(len(batch)))

    assert (result.added, result.unchanged) == (39, 2)  # pdq(100) active already; the duplicate
    assert sorted(committed) == sorted([7] * 5 + [6])
    entries = dict(BankEntry.objects.filter(bank=bank).values_list("value", "id"))
    assert len(entries) == 40
    assert BankEntry.objects.filter(bank=bank, status=BankEntry.Status.ACTIVE).count() == 40
    new = sorted(set(entries.values()) - {entries[pdq(100)]})
    assert sorted(result.entry_ids) == new
    assert sorted(BankChange.objects.order_by("id").values_list("entry_id", flat=True)[start:]) == new
    assert sorted(ADDED) == new  # the retroactive sweep's hook, on commit of each batch
    assert BankEntry.objects.get(value=pdq(105)).source == "partner:tab\there, back\\slash"
    if connection.vendor == "postgresql":
        assert len(writers) > 1 and all(name.startswith("bank-import") for name in writers)
    else:
        assert not writers  # bulk inserts through the ORM, one batch after another


@pytest.mark.django_db
def test_an_import_inside_a_callers_transaction_stays_in_it() -> None:
    """Exchange syncs import inside their own transaction: a rollback there takes the import with it."""
    from django.db import transaction

    bank = bank_get_or_create(name="bulk")
    rows = [ImportRow(line=i, algorithm="pdq", value=pdq(200 + i)) for i in range(12)]
    with pytest.raises(RuntimeError), transaction.atomic():
        result = bank_import_entries(bank=bank, rows=rows, source="partner:x", batch_rows=5, writers=2)
        assert result.added == 12
        raise RuntimeError("the caller gives up")
    assert not BankEntry.objects.filter(bank=bank).exists()
    assert not BankChange.objects.exists()


@pytest.mark.django_db
def test_a_large_import_on_postgresql_refreshes_the_planner_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without fresh statistics the matchers' "entries above my checkpoint" becomes a full table scan."""
    import hashing.banks

    bank = bank_get_or_create(name="bulk")
    monkeypatch.setattr(hashing.banks, "ANALYZE_AFTER_ROWS", 20)
    bank_import_entries(bank=bank, rows=[ImportRow(line=i, algorithm="pdq", value=pdq(300 + i)) for i in range(30)],
                        source="x")
    if connection.vendor != "postgresql":
        return  # SQLite plans these queries by the primary key whatever its statistics say
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [BankEntry._meta.db_table])
        assert cursor.fetchone()[0] >= 30
