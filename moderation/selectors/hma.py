"""Reads for the HMA-compatible routes: our banks under HMA's names, and bank entries as HMA contents.

**Bank names.** HMA's bank names match ``[A-Z_][A-Z0-9_]*``; ours are slugs (``confirmed-takedowns``). A
bank's HMA name is its name in capitals with ``-`` written ``_`` (``CONFIRMED_TAKEDOWNS``); a bank created
through HMA's routes is named the other way round (``MY_BANK`` becomes ``my-bank``), so both directions
hold for every such bank and for every bank whose name has no ``_``. A bank whose name does not give a valid
HMA name (it starts with a digit, or holds other characters) does not show in HMA's routes; of two banks
with the same HMA name (``my-bank`` and ``my_bank``) only the one named the HMA way (``my-bank``) shows.
Banks deleted through HMA's routes (``Bank.deleted_at``) do not show.

**Contents.** An HMA content is one bank entry; its id is the entry's id. ``pdq`` entries are HMA's ``pdq``
signals and ``md5`` entries its ``video_md5`` (the MD5 of the file); other algorithms show under our names.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from hashing.models import Bank, BankEntry
from moderation.models import HmaContent
from moderation.models.hma import DISABLED, ENABLED

HMA_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# HMA's signal types, by our algorithm names, and the other way round.
SIGNAL_TYPES = {"pdq": "pdq", "video_md5": "md5"}
SIGNAL_TYPE_OF = {algorithm: signal for signal, algorithm in SIGNAL_TYPES.items()}
# HMA's content types and the signal types each is hashed into.
CONTENT_TYPES = {"photo": ("pdq",), "video": ("video_md5",)}


def hma_name_for(bank_name: str) -> str | None:
    """The HMA name of one of our banks, or None when it would not be a valid HMA name."""
    name = bank_name.upper().replace("-", "_")
    return name if HMA_NAME.fullmatch(name) else None


def bank_name_for(hma_name: str) -> str:
    """Our name for a bank created under ``hma_name`` (a valid HMA name)."""
    return hma_name.lower().replace("_", "-")


def bank_by_hma_name(hma_name: str, *, include_deleted: bool = False) -> Bank | None:
    """The bank shown under ``hma_name`` (see the module's docstring), or None."""
    if not HMA_NAME.fullmatch(hma_name):
        return None
    banks = Bank.objects.all() if include_deleted else Bank.objects.filter(deleted_at=None)
    bank = banks.filter(name=bank_name_for(hma_name)).first()
    if bank is not None:
        return bank
    for candidate in banks.order_by("pk"):
        if hma_name_for(candidate.name) == hma_name:
            return candidate
    return None


def banks_visible() -> list[tuple[str, Bank]]:
    """``(HMA name, bank)`` of every bank HMA's routes show, oldest first."""
    shown: dict[str, Bank] = {}
    for bank in Bank.objects.filter(deleted_at=None).order_by("pk"):
        name = hma_name_for(bank.name)
        if name is None:
            continue
        # Of two banks with one HMA name, the one named the HMA way wins (bank_by_hma_name agrees).
        if name not in shown or bank.name == bank_name_for(name):
            shown[name] = bank
    return sorted(shown.items(), key=lambda item: item[1].pk)


def matching_ratio(bank: Bank) -> float:
    """HMA's ``matching_enabled_ratio`` of a bank: its ``enabled_ratio``, or 0 while it is disabled."""
    return float(bank.enabled_ratio) if bank.enabled else 0.0


def bank_config(hma_name: str, bank: Bank) -> dict[str, object]:
    """HMA's ``BankConfig`` of a bank."""
    return {"name": hma_name, "matching_enabled_ratio": matching_ratio(bank)}


@dataclass(frozen=True)
class Content:
    """A bank entry as an HMA content."""

    entry: BankEntry
    extra: HmaContent | None

    @property
    def signal_type(self) -> str:
        return SIGNAL_TYPE_OF.get(self.entry.algorithm, self.entry.algorithm)

    @property
    def disable_until_ts(self) -> int:
        """HMA's value, from the entry's status (which decides) and the time the caller gave, if any."""
        given = self.extra.disable_until_ts if self.extra is not None else ENABLED
        if self.entry.status == BankEntry.Status.ACTIVE:
            return given if given == ENABLED or 1 < given <= int(time.time()) else ENABLED
        return given if given == DISABLED or given > int(time.time()) else DISABLED


def content_in_bank(bank: Bank, content_id: int) -> Content | None:
    """Entry ``content_id`` of ``bank`` unless it was deleted; None otherwise."""
    entry = (BankEntry.objects.filter(pk=content_id, bank=bank).exclude(status=BankEntry.Status.DELETED)
             .select_related("hma").first())
    if entry is None:
        return None
    return Content(entry=entry, extra=getattr(entry, "hma", None))
