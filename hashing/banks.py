"""Writes to hash banks. Reads for matching live in ``hashing.matching`` and ``hashing.matcher``.

Every change to an entry also appends a ``BankChange`` row in the same transaction: matcher processes
replay those rows to keep their in-memory index fresh (``hashing.matcher``). Code that writes bank
entries anywhere else must call :func:`bank_entries_changed` in its transaction, or matchers will not
see the change until they restart.

When entries become active, the hook named by the ``TAKEDOWN_BANK_ENTRIES_ADDED_HOOK`` setting (a
dotted path, called on commit with the entry ids) starts the retroactive sweep of stored media; it is
a setting because ``hashing`` never imports ``moderation``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from hashing.algorithms import ALGORITHMS, get_algorithm
from hashing.models import Bank, BankChange, BankEntry

# Rows per transaction when importing through the ORM (SQLite): short transactions keep matchers' change
# replay moving and hold row locks briefly (see BankChange).
IMPORT_BATCH_ROWS = 5000
# Rows per transaction when importing through COPY (PostgreSQL): a batch of this size commits in one to two
# seconds here, so matchers take an import's entries in steady steps, while the per-transaction cost
# (temporary table, statements, commit) stays a small part of the whole (docs/benchmarks.md, "HMA side by side").
COPY_BATCH_ROWS = 50_000
# An import that adds at least this many entries refreshes the tables' planner statistics (``_analyze``).
ANALYZE_AFTER_ROWS = 10_000
# The session temporary table COPY fills (PostgreSQL only).
_STAGING = "takedown_import_rows"


class InvalidThresholds(ValueError):
    """A bank threshold that cannot be used; the message names the algorithm and the allowed range."""


def bank_get_or_create(*, name: str, kind: str = Bank.Kind.LOCAL, description: str = "",
                       blocks_uploads: bool = True) -> Bank:
    bank, _ = Bank.objects.get_or_create(
        name=name, defaults={"kind": kind, "description": description, "blocks_uploads": blocks_uploads}
    )
    return bank


def bank_configure(*, bank: Bank, enabled: bool | None = None,
                   thresholds: dict[str, int] | None = None, on_stream_match: str | None = None) -> Bank:
    """Enable or disable a bank, set its per-algorithm thresholds, or what proactive scanning does on a match
    (``Bank.OnStreamMatch``). Takes effect on the next match."""
    fields = ["updated_at"]
    if enabled is not None:
        bank.enabled = enabled
        fields.append("enabled")
    if on_stream_match is not None:
        if on_stream_match not in Bank.OnStreamMatch.values:
            raise InvalidThresholds(f"on_stream_match must be one of {', '.join(Bank.OnStreamMatch.values)}; "
                                    f"got {on_stream_match!r}")
        bank.on_stream_match = on_stream_match
        fields.append("on_stream_match")
    if thresholds is not None:
        for name, value in thresholds.items():
            algorithm = ALGORITHMS.get(name)
            if algorithm is None or not algorithm.perceptual:
                raise InvalidThresholds(f"thresholds apply to perceptual hashes (pdq, phash, dhash), not {name!r}")
            if not isinstance(value, int) or not 0 <= value < algorithm.bits // 2:
                raise InvalidThresholds(
                    f"the {name} threshold must be a whole number from 0 to {algorithm.bits // 2 - 1}; got {value!r}")
        bank.thresholds = dict(thresholds)
        fields.append("thresholds")
    bank.save(update_fields=fields)
    return bank


def bank_entries_changed(entry_ids: Sequence[int]) -> None:
    """Record that these entries changed, for matchers to replay. Call inside the writing transaction."""
    BankChange.objects.bulk_create([BankChange(entry_id=entry_id) for entry_id in entry_ids])


def _on_entries_added(entry_ids: list[int]) -> None:
    hook = getattr(settings, "TAKEDOWN_BANK_ENTRIES_ADDED_HOOK", "")
    if hook and entry_ids:
        ids = list(entry_ids)
        transaction.on_commit(lambda: import_string(hook)(ids))


@transaction.atomic
def bank_add_entries(*, bank: Bank, hashes: Iterable[tuple[str, str]], source: str) -> list[BankEntry]:
    """Add ``(algorithm, value)`` pairs to ``bank``; an entry already there is re-activated, not duplicated.

    Returns the entries that were created or re-activated (empty when nothing changed).
    """
    changed: list[BankEntry] = []
    for algorithm_name, value in hashes:
        algorithm = get_algorithm(algorithm_name)
        value = value.lower()
        entry, created = BankEntry.objects.select_for_update().get_or_create(
            bank=bank, algorithm=algorithm.name, value=value, defaults={"source": source}
        )
        if created:
            changed.append(entry)
        elif entry.status != BankEntry.Status.ACTIVE:
            entry.status = BankEntry.Status.ACTIVE
            entry.source = source
            entry.save(update_fields=["status", "source", "updated_at"])
            changed.append(entry)
    bank_entries_changed([e.pk for e in changed])
    _on_entries_added([e.pk for e in changed])
    return changed


def bank_withdraw_entries(*, bank: Bank, hashes: Iterable[tuple[str, str]],
                          status: str = BankEntry.Status.WITHDRAWN) -> int:
    """Withdraw (or delete) entries so they stop matching at once. Returns how many changed."""
    if status not in (BankEntry.Status.WITHDRAWN, BankEntry.Status.DELETED):
        raise ValueError(f"entries are withdrawn or deleted, not {status!r}")
    total = 0
    with transaction.atomic():
        for algorithm_name, value in hashes:
            # Withdrawing touches active entries only; deleting also takes withdrawn ones.
            current = [BankEntry.Status.ACTIVE] if status == BankEntry.Status.WITHDRAWN else [
                BankEntry.Status.ACTIVE, BankEntry.Status.WITHDRAWN]
            ids = list(BankEntry.objects.select_for_update().filter(
                bank=bank, algorithm=get_algorithm(algorithm_name).name, value=value.lower(), status__in=current,
            ).values_list("id", flat=True))
            BankEntry.objects.filter(id__in=ids).update(status=status)
            bank_entries_changed(ids)
            total += len(ids)
    return total


@dataclass
class ImportRow:
    """One row of an import file, already checked: a known algorithm and a hex value of its length."""

    line: int
    algorithm: str
    value: str
    source: str = ""


@dataclass
class ImportResult:
    added: int = 0
    unchanged: int = 0
    entry_ids: list[int] = field(default_factory=list)


def bank_import_entries(*, bank: Bank, rows: Iterable[ImportRow], source: str, batch_rows: int | None = None,
                        writers: int = 1,
                        on_batch: Callable[[list[ImportRow]], None] | None = None) -> ImportResult:
    """Add many entries, ``batch_rows`` per transaction. A row's own ``source`` wins over ``source``.

    Entries already active are left alone; withdrawn ones are re-activated. On PostgreSQL each batch goes
    through COPY (``COPY_BATCH_ROWS`` by default), elsewhere through bulk inserts (``IMPORT_BATCH_ROWS``);
    either way every entry added or re-activated gets its ``BankChange`` row and reaches the entries-added
    hook in the batch's transaction, and a failed batch rolls back alone (earlier ones stay committed).

    ``writers`` > 1 writes that many batches at once, each on its own database connection, while this
    thread reads the next rows: on PostgreSQL, outside a transaction only (inside one, every batch must be
    part of the caller's transaction, so they are written here, one after another). ``on_batch`` is called
    here with each committed batch (a progress bar). Returns the counts.
    """
    copy = connection.vendor == "postgresql"
    size = batch_rows or (COPY_BATCH_ROWS if copy else IMPORT_BATCH_ROWS)
    write = _copy_batch if copy else _import_batch
    result = ImportResult()
    batches = _batches(rows, size)
    if writers > 1 and copy and not connection.in_atomic_block:
        _write_in_parallel(write, bank, batches, source, result, writers, on_batch)
    else:
        for batch in batches:
            write(bank, batch, source, result)
            if on_batch:
                on_batch(batch)
    if copy and result.added >= ANALYZE_AFTER_ROWS:
        _analyze()
    return result


def _analyze() -> None:
    """Refresh PostgreSQL's statistics of the entry and change tables after a bulk load.

    Until autovacuum gets to them (a minute or more; never where it is off), the planner still thinks the
    tables small or empty and answers the matchers' "ids above my checkpoint" with a full scan of the
    table on every refresh (0.2 s at 2M entries, measured) instead of an index probe.
    """
    with connection.cursor() as cursor:
        for model in (BankEntry, BankChange):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def _batches(rows: Iterable[ImportRow], size: int) -> Iterator[list[ImportRow]]:
    batch: list[ImportRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


_Write = Callable[[Bank, list[ImportRow], str, "ImportResult"], None]


def _write_in_parallel(write: _Write, bank: Bank, batches: Iterator[list[ImportRow]], source: str,
                       result: ImportResult, writers: int, on_batch: Callable[[list[ImportRow]], None] | None) -> None:
    """Batches on ``writers`` threads, at most two each in flight (bounded memory); the first error is raised
    once the batches in flight have finished."""

    def in_thread(batch: list[ImportRow]) -> tuple[list[ImportRow], ImportResult]:
        part = ImportResult()
        try:
            write(bank, batch, source, part)
        finally:
            connection.close()  # this thread's own connection; the next batch opens a fresh one
        return batch, part

    def merge(done: Iterable[Future[tuple[list[ImportRow], ImportResult]]]) -> None:
        for future in done:
            batch, part = future.result()
            result.added += part.added
            result.unchanged += part.unchanged
            result.entry_ids.extend(part.entry_ids)
            if on_batch:
                on_batch(batch)

    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="bank-import") as pool:
        pending: set[Future[tuple[list[ImportRow], ImportResult]]] = set()
        for batch in batches:
            pending.add(pool.submit(in_thread, batch))
            if len(pending) >= 2 * writers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                merge(done)
        merge(wait(pending).done)


def _wanted(batch: list[ImportRow], source: str) -> dict[tuple[str, str], str]:
    """``(algorithm, value) -> source`` of the batch's distinct entries; the last row of a value wins."""
    wanted: dict[tuple[str, str], str] = {}
    for row in batch:
        wanted[(row.algorithm, row.value.lower())] = (row.source or source)[:200]
    return wanted


def _batch_done(ids: list[int], batch: list[ImportRow], result: ImportResult) -> None:
    """Start the entries-added hook for ``ids`` (on commit) and count the batch."""
    _on_entries_added(ids)
    result.added += len(ids)
    result.unchanged += len(batch) - len(ids)
    result.entry_ids.extend(ids)


@transaction.atomic
def _import_batch(bank: Bank, batch: list[ImportRow], source: str, result: ImportResult) -> None:
    """One batch through the ORM: lock the entries already there, re-activate, bulk-insert the rest."""
    wanted = _wanted(batch, source)
    existing: dict[tuple[str, str], tuple[int, str]] = {}
    for algorithm in {a for a, _ in wanted}:
        values = [v for a, v in wanted if a == algorithm]
        for entry_id, value, status in BankEntry.objects.select_for_update().filter(
                bank=bank, algorithm=algorithm, value__in=values).values_list("id", "value", "status"):
            existing[(algorithm, value)] = (entry_id, status)
    reactivate = [entry_id for key, (entry_id, status) in existing.items() if status != BankEntry.Status.ACTIVE]
    BankEntry.objects.filter(id__in=reactivate).update(status=BankEntry.Status.ACTIVE, updated_at=timezone.now())
    created = BankEntry.objects.bulk_create([
        BankEntry(bank=bank, algorithm=algorithm, value=value, source=row_source)
        for (algorithm, value), row_source in wanted.items() if (algorithm, value) not in existing
    ])
    ids = reactivate + [e.pk for e in created]
    bank_entries_changed(ids)
    _batch_done(ids, batch, result)


@transaction.atomic
def _copy_batch(bank: Bank, batch: list[ImportRow], source: str, result: ImportResult) -> None:
    """One batch through PostgreSQL COPY into a session temporary table, then set-based SQL from there.

    ``INSERT ... ON CONFLICT DO NOTHING`` adds the new values and leaves the ones already there alone; only
    when some were there does an ``UPDATE`` re-activate the withdrawn or deleted among them. The change rows
    are one ``INSERT ... SELECT``. Rows go in sorted by value: index pages are visited in order, and writers
    running side by side take their locks in the same order, so they wait for each other but never deadlock.
    """
    # (value, algorithm, source): flat tuples sort several times faster than nested ones.
    wanted = sorted((value, algorithm, row_source) for (algorithm, value), row_source in _wanted(batch, source).items())
    # Only the models' own table names and a constant are put into the SQL text; values are parameters.
    entries, changes = (connection.ops.quote_name(m._meta.db_table) for m in (BankEntry, BankChange))
    now = timezone.now()
    active = BankEntry.Status.ACTIVE.value
    with connection.cursor() as cursor:
        # A session table, emptied by each batch: it survives the batches of one caller's outer transaction.
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} "
                       f"(seq integer, algorithm text, value text, source text) ON COMMIT DELETE ROWS")
        cursor.execute(f"TRUNCATE {_STAGING}")
        # Room to sort a batch in memory (the default 4 MB spills one of 50,000 rows to disk); this
        # transaction only.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        with cursor.cursor.copy(f"COPY {_STAGING} (seq, algorithm, value, source) FROM STDIN") as copy:
            for seq, (value, algorithm, row_source) in enumerate(wanted):
                copy.write_row((seq, algorithm, value, row_source))
        cursor.execute(
            f"INSERT INTO {entries} (bank_id, algorithm, value, status, source, created_at, updated_at) "  # noqa: S608
            f"SELECT %s, algorithm, value, %s, source, %s, %s FROM {_STAGING} ORDER BY seq "
            f"ON CONFLICT (bank_id, algorithm, value) DO NOTHING RETURNING id",
            [bank.pk, active, now, now])
        ids = sorted(row[0] for row in cursor.fetchall())
        if len(ids) < len(wanted):
            # Some values were there already: re-activate those that are not active, locked in id order.
            cursor.execute(
                f"SELECT e.id FROM {entries} e JOIN {_STAGING} s ON e.algorithm = s.algorithm "  # noqa: S608
                f"AND e.value = s.value "
                f"WHERE e.bank_id = %s AND e.status <> %s ORDER BY e.id FOR UPDATE OF e", [bank.pk, active])
            reactivate = [row[0] for row in cursor.fetchall()]
            cursor.execute(f"UPDATE {entries} SET status = %s, updated_at = %s WHERE id = ANY(%s)",  # noqa: S608
                           [active, now, reactivate])
            ids = reactivate + ids
        cursor.execute(f"INSERT INTO {changes} (entry_id, created_at) SELECT unnest(%s::bigint[]), %s",
                       [ids, now])
    _batch_done(ids, batch, result)
