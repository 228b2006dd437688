"""Checks of what partners and operators send the exchange: tags, case references, hash rows, batch sizes.

Input that does not pass raises :class:`ExchangeError`, naming each bad field; these checks read and write
nothing. A partner's request or page whose signature does not verify is audited (:func:`signature_rejected`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from hashing.algorithms import ALGORITHMS
from hashing.models import BankEntry
from moderation.audit import SYSTEM, audit_record
from moderation.models import Partner

# Tags are short labels ("ncii", "deepfake"); a row with more or longer ones is refused, naming the field.
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
# An origin's opaque case reference; never one of our case numbers.
CASE_REF = re.compile(r"^[A-Za-z0-9_.:-]{0,64}$")
PUSH_STATUSES = (BankEntry.Status.ACTIVE, BankEntry.Status.WITHDRAWN, BankEntry.Status.DELETED)


class ExchangeError(ValueError):
    """Input the exchange cannot use. ``errors`` maps a field (``rows[3].value``) to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def clean_tags(tags: object, *, field_name: str = "tags") -> list[str]:
    """A list of distinct short strings, or :class:`ExchangeError` naming ``field_name``."""
    if tags is None:
        return []
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise ExchangeError({field_name: "must be a list of strings"})
    if len(tags) > MAX_TAGS:
        raise ExchangeError({field_name: f"at most {MAX_TAGS} tags"})
    cleaned = [t.strip() for t in tags]
    if any(not t or len(t) > MAX_TAG_LENGTH for t in cleaned):
        raise ExchangeError({field_name: f"each tag must be 1 to {MAX_TAG_LENGTH} characters"})
    return list(dict.fromkeys(cleaned))


def clean_case_ref(case_ref: object, *, field_name: str = "case_ref") -> str:
    """``case_ref`` when it is an opaque case reference, or :class:`ExchangeError` naming ``field_name``."""
    if not isinstance(case_ref, str) or not CASE_REF.fullmatch(case_ref):
        raise ExchangeError({field_name: "up to 64 letters, digits and . _ : -"})
    return case_ref


def max_batch_rows() -> int:
    """The most rows one pushed batch or feedback batch may carry (``TAKEDOWN_EXCHANGE_MAX_BATCH_ROWS``)."""
    return int(settings.TAKEDOWN_EXCHANGE_MAX_BATCH_ROWS)


@dataclass
class HashRow:
    """One checked row of a pushed batch or a pulled page."""

    signal_type: str
    value: str
    status: str = BankEntry.Status.ACTIVE
    tags: list[str] = field(default_factory=list)
    case_ref: str = ""


def parse_hash_rows(rows: object, *, field_name: str = "rows") -> list[HashRow]:
    """Check every row before anything is saved; :class:`ExchangeError` names each bad row and field
    (``rows[3].value``)."""
    if not isinstance(rows, list):
        raise ExchangeError({field_name: "must be a list of hash records"})
    errors: dict[str, str] = {}
    parsed: list[HashRow] = []
    for i, row in enumerate(rows):
        where = f"{field_name}[{i}]"
        if not isinstance(row, dict):
            errors[where] = "must be an object"
            continue
        signal_type, value = row.get("signal_type"), row.get("value")
        algorithm = ALGORITHMS.get(signal_type) if isinstance(signal_type, str) else None
        if algorithm is None:
            errors[f"{where}.signal_type"] = f"use one of {', '.join(sorted(ALGORITHMS))}"
            continue
        if not isinstance(value, str) or len(value) != algorithm.hex_length or not re.fullmatch(
                r"[0-9a-fA-F]+", value):
            errors[f"{where}.value"] = f"a {algorithm.name} hash is {algorithm.hex_length} hex characters"
            continue
        status = row.get("status", BankEntry.Status.ACTIVE)
        if status not in PUSH_STATUSES:
            errors[f"{where}.status"] = f"use one of {', '.join(PUSH_STATUSES)}"
            continue
        try:
            case_ref = clean_case_ref(row.get("case_ref") or "", field_name=f"{where}.case_ref")
            tags = clean_tags(row.get("tags"), field_name=f"{where}.tags")
        except ExchangeError as exc:
            errors.update(exc.errors)
            continue
        parsed.append(HashRow(signal_type=algorithm.name, value=value.lower(), status=str(status), tags=tags,
                              case_ref=case_ref))
    if errors:
        raise ExchangeError(errors)
    return parsed


def signature_rejected(*, partner: Partner | None, what: str, detail: dict[str, Any]) -> None:
    """Audit a request or page whose signature did not verify against the pinned keys."""
    audit_record(actor=f"partner:{partner.pk}" if partner else SYSTEM, action="exchange.signature_rejected",
                 object_type="partner", object_id=partner.pk if partner else "", data={"what": what, **detail})
