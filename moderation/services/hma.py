"""Bank curation through the HMA-compatible routes: the same writes as ours, audited.

Every change goes through ``hashing.banks`` (so matchers, partners' feeds and the retroactive sweep see it)
and appends an audit event naming the API key that made it (``api_key:<id>``), in one transaction. Names and
ids are HMA's (``moderation.selectors.hma``). A refusal raises :class:`HmaRefused` with HMA's status code and
a message that says what to do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hashing import banks
from hashing.models import Bank, BankEntry, BankVideo
from moderation.audit import SYSTEM, audit_record
from moderation.models import HmaContent
from moderation.models.hma import DISABLED, ENABLED
from moderation.selectors.hma import HMA_NAME, SIGNAL_TYPE_OF, bank_by_hma_name, bank_name_for, hma_name_for

# HMA refuses a "disabled until" more than five years ahead.
MAX_DISABLE_DAYS = 5 * 365
NOTE_MAX = 255
_NAME_MAX = Bank._meta.get_field("name").max_length or 100
# Entries changed per statement when a whole bank is deleted.
_CHUNK = 5000


class HmaRefused(Exception):
    """A request HMA's routes answer with ``status`` and ``{"message": str(self)}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _protected_names() -> set[str]:
    """Banks our own code finds by name: renaming or deleting one would cut it off."""
    return {name for name in (settings.TAKEDOWN_CONFIRMED_BANK, settings.TAKEDOWN_VICTIM_BANK,
                              getattr(settings, "TAKEDOWN_STOPNCII_BANK", ""),
                              getattr(settings, "TAKEDOWN_STOPNCII_SUBMIT_BANK", "")) if name}


def check_writable(bank: Bank, hma_name: str) -> None:
    """Partner banks mirror what partners send: HMA's routes may read them, not change them."""
    if bank.kind == Bank.Kind.PARTNER:
        raise HmaRefused(403, f"bank '{hma_name}' holds a partner's hashes and changes only through the exchange; "
                              "manage it with 'manage.py partner ...' (docs/exchange.md)")


def _check_name(hma_name: str) -> None:
    if not isinstance(hma_name, str) or not HMA_NAME.fullmatch(hma_name):
        raise HmaRefused(400, "Bank names must be UPPER_WITH_UNDERSCORE: letters A-Z, digits and _, not starting "
                              "with a digit")
    if len(hma_name) > _NAME_MAX:
        raise HmaRefused(400, f"Bank names are at most {_NAME_MAX} characters here")


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio <= 1.0:
        raise HmaRefused(400, f"enabled_ratio must be from 0.0 to 1.0; got {ratio}")


def hma_bank_create(*, hma_name: str, enabled_ratio: float = 1.0, actor: str) -> Bank:
    """A new bank named for ``hma_name``; a bank deleted under that name comes back, empty."""
    _check_name(hma_name)
    _check_ratio(enabled_ratio)
    if bank_by_hma_name(hma_name) is not None:
        raise HmaRefused(403, "Bank already exists")
    with transaction.atomic():
        bank = bank_by_hma_name(hma_name, include_deleted=True)
        revived = bank is not None
        if bank is None:
            bank = banks.bank_get_or_create(name=bank_name_for(hma_name), kind=Bank.Kind.LOCAL,
                                            description="Created through the HMA-compatible API.")
        bank.deleted_at = None
        bank.enabled = enabled_ratio > 0
        bank.enabled_ratio = enabled_ratio
        bank.save(update_fields=["deleted_at", "enabled", "enabled_ratio", "updated_at"])
        audit_record(actor=actor, action="bank.created", object_type="bank", object_id=bank.pk,
                     data={"name": bank.name, "hma_name": hma_name, "enabled_ratio": enabled_ratio,
                           "revived": revived, "via": "hma"})
    return bank


def hma_bank_update(*, bank: Bank, hma_name: str, new_hma_name: str | None = None, enabled: bool | None = None,
                    enabled_ratio: float | None = None, actor: str) -> Bank:
    """Rename, enable or disable a bank, or set its ratio, as HMA's ``PUT /c/bank/<name>`` does: ``enabled``
    sets the ratio to 1 or 0, and ``enabled_ratio`` wins over it. A ratio of 0 disables the bank."""
    check_writable(bank, hma_name)
    before = {"name": bank.name, "enabled": bank.enabled, "enabled_ratio": bank.enabled_ratio}
    ratio = None if enabled is None else (1.0 if enabled else 0.0)
    if enabled_ratio is not None:
        _check_ratio(enabled_ratio)
        ratio = enabled_ratio
    name = None
    if new_hma_name is not None and new_hma_name != hma_name:
        _check_name(new_hma_name)
        if bank.name in _protected_names():
            raise HmaRefused(403, f"bank '{hma_name}' is named in Takedown's settings and cannot be renamed")
        if bank_by_hma_name(new_hma_name, include_deleted=True) is not None:
            raise HmaRefused(403, "Bank name already exists")
        name = bank_name_for(new_hma_name)
    with transaction.atomic():
        fields = ["updated_at"]
        if name is not None:
            bank.name = name
            fields.append("name")
        if ratio is not None:
            bank.enabled_ratio = ratio
            fields.append("enabled_ratio")
        bank.save(update_fields=fields)
        if ratio is not None:
            banks.bank_configure(bank=bank, enabled=ratio > 0)
        audit_record(actor=actor, action="bank.configured", object_type="bank", object_id=bank.pk,
                     data={"via": "hma"}, before=before,
                     after={"name": bank.name, "enabled": bank.enabled, "enabled_ratio": bank.enabled_ratio})
    return bank


def hma_bank_delete(*, bank: Bank, hma_name: str, actor: str) -> int:
    """Delete a bank as HMA's routes see it: every entry deleted (through the change log, so matchers drop
    them and partners' feeds carry tombstones), its videos deleted, the bank disabled and hidden. Rows stay:
    cases keep their matches as evidence. Returns how many entries were deleted."""
    check_writable(bank, hma_name)
    if bank.name in _protected_names():
        raise HmaRefused(403, f"bank '{hma_name}' is named in Takedown's settings and cannot be deleted; "
                              "delete its contents one by one, or disable it (PUT enabled=false)")
    deleted = 0
    with transaction.atomic():
        ids = list(BankEntry.objects.filter(bank=bank).exclude(status=BankEntry.Status.DELETED)
                   .order_by("pk").values_list("pk", flat=True))
        now = timezone.now()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            BankEntry.objects.filter(pk__in=chunk).update(status=BankEntry.Status.DELETED, updated_at=now)
            banks.bank_entries_changed(chunk)
            deleted += len(chunk)
        videos = BankVideo.objects.filter(bank=bank).exclude(status=BankEntry.Status.DELETED).update(
            status=BankEntry.Status.DELETED, updated_at=now)
        bank.deleted_at = now
        bank.save(update_fields=["deleted_at", "updated_at"])
        banks.bank_configure(bank=bank, enabled=False)
        audit_record(actor=actor, action="bank.deleted", object_type="bank", object_id=bank.pk,
                     data={"name": bank.name, "hma_name": hma_name, "entries": deleted, "videos": videos,
                           "via": "hma"})
    return deleted


@dataclass(frozen=True)
class Added:
    """One signal banked: its content id (the entry's id), HMA's signal type and the value as stored."""

    content_id: int
    signal_type: str
    value: str


def check_note(note: Any) -> str:
    """HMA's rule for a note: a string of at most 255 characters; nothing (or empty) is no note."""
    if not note:
        return ""
    if not isinstance(note, str):
        raise HmaRefused(400, "note should be a string")
    if len(note) > NOTE_MAX:
        raise HmaRefused(400, f"note must be at most {NOTE_MAX} characters")
    return note


def hma_content_add(*, bank: Bank, hma_name: str, signals: Mapping[str, str], note: str = "",
                    metadata: dict[str, Any] | None = None, actor: str, source: str) -> list[Added]:
    """Bank each ``(our algorithm, value)`` of ``signals`` (values already checked) as one content.

    A value already in the bank is the same content again (re-activated if it was disabled): a bank holds a
    hash once. Returns one :class:`Added` per signal, in the order given.
    """
    check_writable(bank, hma_name)
    added: list[Added] = []
    with transaction.atomic():
        changed = banks.bank_add_entries(bank=bank, hashes=list(signals.items()), source=source[:200])
        for algorithm, value in signals.items():
            entry = BankEntry.objects.get(bank=bank, algorithm=algorithm, value=value.lower())
            HmaContent.objects.update_or_create(entry=entry, defaults={
                "note": note, "metadata": metadata or None, "disable_until_ts": ENABLED})
            added.append(Added(entry.pk, SIGNAL_TYPE_OF.get(algorithm, algorithm), entry.value))
        audit_record(actor=actor, action="bank.entries_added", object_type="bank", object_id=bank.pk,
                     data={"entries": [a.content_id for a in added], "changed": [e.pk for e in changed],
                           "via": "hma"})
    return added


def disable_until_checked(value: Any) -> int:
    """HMA's ``disable_until_ts`` as an int: 0, 1 or a Unix time no more than five years ahead."""
    try:
        if isinstance(value, bool):
            raise TypeError
        ts = int(value)
    except (TypeError, ValueError):
        raise HmaRefused(400, f"Invalid int: '{value}'") from None
    if ts < 0:
        raise HmaRefused(400, "disable_until_ts must be a non-negative integer")
    if ts > int((timezone.now() + timedelta(days=MAX_DISABLE_DAYS)).timestamp()):
        raise HmaRefused(400, "disable_until_ts must be less than 5 years in the future")
    return ts


_UNSET: Any = object()


def hma_content_update(*, bank: Bank, hma_name: str, entry: BankEntry, disable_until_ts: int | None = None,
                       note: Any = _UNSET, actor: str) -> HmaContent:
    """Enable or disable a content (``disable_until_ts``: 0 off, 1 on, a Unix time: off until then) and/or
    set its note. Disabling withdraws the entry, so it stops matching at once; enabling re-activates it."""
    check_writable(bank, hma_name)
    with transaction.atomic():
        extra, _ = HmaContent.objects.select_for_update().get_or_create(entry=entry)
        before = {"disable_until_ts": extra.disable_until_ts, "status": entry.status}
        if note is not _UNSET:
            extra.note = check_note(note)
        if disable_until_ts is not None:
            extra.disable_until_ts = disable_until_ts
            off = disable_until_ts == DISABLED or disable_until_ts > int(time.time())
            pair = [(entry.algorithm, entry.value)]
            if off and entry.status == BankEntry.Status.ACTIVE:
                banks.bank_withdraw_entries(bank=bank, hashes=pair)
            elif not off and entry.status == BankEntry.Status.WITHDRAWN:
                banks.bank_add_entries(bank=bank, hashes=pair, source=entry.source)
            entry.refresh_from_db(fields=["status"])
        extra.save()
        audit_record(actor=actor, action="bank.entry_updated", object_type="bank_entry", object_id=entry.pk,
                     data={"bank": bank.pk, "via": "hma"}, before=before,
                     after={"disable_until_ts": extra.disable_until_ts, "status": entry.status})
    return extra


def hma_content_delete(*, bank: Bank, hma_name: str, entry: BankEntry, actor: str) -> int:
    """Delete a content: its entry is deleted (a tombstone for partners' feeds), so it never matches again."""
    check_writable(bank, hma_name)
    with transaction.atomic():
        count = banks.bank_withdraw_entries(bank=bank, hashes=[(entry.algorithm, entry.value)],
                                            status=BankEntry.Status.DELETED)
        audit_record(actor=actor, action="bank.entries_withdrawn", object_type="bank", object_id=bank.pk,
                     data={"entries": [entry.pk], "status": BankEntry.Status.DELETED, "via": "hma"})
    return count


def hma_reenable_due(*, now: datetime | None = None) -> int:
    """Re-activate the contents disabled until a time that has passed (beat runs it every minute)."""
    stamp = int((now or timezone.now()).timestamp())
    due = list(HmaContent.objects.filter(disable_until_ts__gt=ENABLED, disable_until_ts__lte=stamp,
                                         entry__status=BankEntry.Status.WITHDRAWN)
               .values_list("entry__bank_id", "entry_id", "entry__algorithm", "entry__value", "entry__source"))
    count = 0
    for bank in Bank.objects.filter(pk__in={row[0] for row in due}, deleted_at=None).order_by("pk"):
        mine = [row for row in due if row[0] == bank.pk]
        with transaction.atomic():
            changed: list[int] = []
            for _bank_id, _entry_id, algorithm, value, source in mine:
                changed += [e.pk for e in banks.bank_add_entries(bank=bank, hashes=[(algorithm, value)],
                                                                 source=source)]
            if changed:
                audit_record(actor=SYSTEM, action="bank.entries_added", object_type="bank", object_id=bank.pk,
                             data={"entries": changed, "why": "disable_until_ts passed", "via": "hma"})
            count += len(changed)
    return count


def hma_name_of(bank: Bank) -> str:
    """The HMA name of a bank shown in HMA's routes."""
    return hma_name_for(bank.name) or bank.name
