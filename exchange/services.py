"""Writes of the hash exchange: feedback, partner policy, key scopes, pushed batches.

Every write is audited (``moderation.audit.audit_record``) in its own transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from exchange.models import HashFeedback, KeyScope, PartnerPolicy, SharedEntry
from exchange.signing import BadPublicKey, check_public_key
from hashing.algorithms import ALGORITHMS
from hashing.banks import (
    ImportRow,
    bank_entries_changed,
    bank_get_or_create,
    bank_import_entries,
    bank_withdraw_entries,
)
from hashing.models import Bank, BankEntry
from moderation.audit import SYSTEM, audit_record
from moderation.models import ApiKey, Partner
from moderation.services.api_keys import api_key_create, api_key_forget

# Tags are short labels ("ncii", "deepfake"); a row with more or longer ones is refused, naming the field.
MAX_TAGS = 20
MAX_TAG_LENGTH = 50


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


def feedback_record(*, entry: BankEntry, partner: Partner | None, verdict: str,
                    tags: Sequence[str] = (), actor: str = SYSTEM) -> HashFeedback:
    """Record (or update) ``partner``'s verdict on ``entry``; ``partner=None`` is this instance's own verdict.

    Idempotent: one row per (entry, partner); the same verdict and tags again change nothing and write no
    audit event. Raises :class:`ExchangeError` for an unknown verdict or bad tags.
    """
    if verdict not in HashFeedback.Verdict.values:
        raise ExchangeError({"verdict": f"must be one of {', '.join(HashFeedback.Verdict.values)}"})
    clean = clean_tags(list(tags))
    with transaction.atomic():
        row = HashFeedback.objects.select_for_update().filter(entry=entry, partner=partner).first()
        if row is not None and row.verdict == verdict and row.tags == clean:
            return row
        before = {"verdict": row.verdict, "tags": row.tags} if row is not None else None
        if row is None:
            row = HashFeedback.objects.create(entry=entry, partner=partner, verdict=verdict, tags=clean)
        else:
            row.verdict, row.tags = verdict, clean
            row.save(update_fields=["verdict", "tags", "updated_at"])
        audit_record(actor=actor, action="exchange.feedback_recorded", object_type="bank_entry", object_id=entry.pk,
                     data={"partner": partner.name if partner else None, "verdict": verdict, "tags": clean},
                     before=before, after={"verdict": verdict, "tags": clean})
        if partner is not None and HashFeedback.Verdict.BLOCKED in (verdict, (before or {}).get("verdict")):
            # Partners blocking a matched hash moves the case up (triage); re-rank the cases that match it.
            _retriage_on_commit(entry)
    return row


def _retriage_on_commit(entry: BankEntry) -> None:
    from moderation.models import Match
    from moderation.tasks import triage_media

    media_ids = sorted(set(Match.objects.filter(bank_entry=entry).values_list("media_id", flat=True)))

    def enqueue() -> None:
        for media_id in media_ids:
            triage_media.delay(media_id)

    if media_ids:
        transaction.on_commit(enqueue)


# --- Partners, policy and keys ---------------------------------------------------------------------

def partner_write_bank(partner: Partner) -> Bank:
    """The bank a partner's pushed hashes go to (created on first use), flagged by its policy."""
    bank = bank_get_or_create(name=f"partner-{slugify(partner.name)}"[:100], kind=Bank.Kind.PARTNER,
                              description=f"Hashes pushed by partner {partner.name}.")
    policy = getattr(partner, "exchange_policy", None)
    if policy is not None:
        _apply_auto_action(bank, policy.auto_action)
    return bank


def _apply_auto_action(bank: Bank, action: str) -> None:
    """What a match against the partner's hashes does: block, queue for review, or nothing."""
    enabled = action != PartnerPolicy.AutoAction.IGNORE
    blocks = action == PartnerPolicy.AutoAction.BLOCK_ON_MATCH
    if bank.enabled != enabled or bank.blocks_uploads != blocks:
        bank.enabled, bank.blocks_uploads = enabled, blocks
        bank.save(update_fields=["enabled", "blocks_uploads", "updated_at"])


def _clean_public_keys(public_keys: Iterable[str]) -> list[str]:
    try:
        return list(dict.fromkeys(check_public_key(k) for k in public_keys))
    except BadPublicKey as exc:
        raise ExchangeError({"public_keys": str(exc)}) from exc


def partner_create(*, name: str, organisation: str, trust_level: str = Partner.Trust.LOW,
                   auto_action: str = PartnerPolicy.AutoAction.QUEUE_FOR_REVIEW,
                   allowed_banks: Sequence[Bank] = (), public_keys: Sequence[str] = (),
                   actor: str = SYSTEM) -> Partner:
    """A partner with its exchange policy. Raises :class:`ExchangeError` naming the bad field."""
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "give the partner a name"
    elif Partner.objects.filter(name=name.strip()).exists():
        errors["name"] = f"a partner named {name.strip()!r} exists already"
    if not organisation.strip():
        errors["organisation"] = "give the partner's organisation"
    if trust_level not in Partner.Trust.values:
        errors["trust_level"] = f"use one of {', '.join(Partner.Trust.values)}"
    if auto_action not in PartnerPolicy.AutoAction.values:
        errors["auto_action"] = f"use one of {', '.join(PartnerPolicy.AutoAction.values)}"
    if errors:
        raise ExchangeError(errors)
    keys = _clean_public_keys(public_keys)
    with transaction.atomic():
        partner = Partner.objects.create(name=name.strip(), organisation=organisation.strip(),
                                         trust_level=trust_level)
        policy = PartnerPolicy.objects.create(partner=partner, auto_action=auto_action, public_keys=keys)
        policy.allowed_banks.set(allowed_banks)
        audit_record(actor=actor, action="partner.created", object_type="partner", object_id=partner.pk,
                     data={"name": partner.name, "trust_level": trust_level, "auto_action": auto_action,
                           "allowed_banks": [b.name for b in allowed_banks], "public_keys": len(keys)})
    return partner


def partner_policy(partner: Partner) -> PartnerPolicy:
    policy, _ = PartnerPolicy.objects.get_or_create(partner=partner)
    return policy


def partner_policy_set(*, partner: Partner, auto_action: str | None = None,
                       allowed_banks: Sequence[Bank] | None = None, public_keys: Sequence[str] | None = None,
                       trust_level: str | None = None, actor: str = SYSTEM) -> PartnerPolicy:
    """Change a partner's policy; a new auto-action applies at once to the banks its hashes are in."""
    if auto_action is not None and auto_action not in PartnerPolicy.AutoAction.values:
        raise ExchangeError({"auto_action": f"use one of {', '.join(PartnerPolicy.AutoAction.values)}"})
    if trust_level is not None and trust_level not in Partner.Trust.values:
        raise ExchangeError({"trust_level": f"use one of {', '.join(Partner.Trust.values)}"})
    keys = _clean_public_keys(public_keys) if public_keys is not None else None
    with transaction.atomic():
        policy = partner_policy(partner)
        before = _policy_summary(policy)
        if auto_action is not None:
            policy.auto_action = auto_action
        if keys is not None:
            policy.public_keys = keys
        policy.save()
        if allowed_banks is not None:
            policy.allowed_banks.set(allowed_banks)
        if trust_level is not None:
            partner.trust_level = trust_level
            partner.save(update_fields=["trust_level"])
        for bank in _partner_banks(partner):
            _apply_auto_action(bank, policy.auto_action)
        audit_record(actor=actor, action="partner.policy_changed", object_type="partner", object_id=partner.pk,
                     before=before, after=_policy_summary(policy))
    return policy


def _policy_summary(policy: PartnerPolicy) -> dict[str, Any]:
    return {"auto_action": policy.auto_action, "public_keys": len(policy.public_keys),
            "allowed_banks": sorted(b.name for b in policy.allowed_banks.all()),
            "trust_level": policy.partner.trust_level}


def _partner_banks(partner: Partner) -> list[Bank]:
    """The local banks holding this partner's hashes: its keys' write banks and its remote's bank."""
    banks = {s.write_bank for s in KeyScope.objects.filter(api_key__partner=partner, write_bank__isnull=False)
             .select_related("write_bank") if s.write_bank is not None}
    remote = getattr(partner, "remote", None)
    if remote is not None:
        banks.add(remote.bank)
    return sorted(banks, key=lambda b: b.name)


def partner_key_create(*, partner: Partner, read_banks: Sequence[Bank] = (), write: bool = False,
                       feedback: bool = False, name: str = "", actor: str = SYSTEM) -> tuple[ApiKey, str]:
    """A partner API key with its scope; returns the row and the key, which is shown only now.

    ``read_banks`` must be allow-listed in the partner's policy; ``write`` lets the key push into the
    partner's own bank (``partner_write_bank``).
    """
    policy = partner_policy(partner)
    allowed = set(policy.allowed_banks.values_list("pk", flat=True))
    outside = [b.name for b in read_banks if b.pk not in allowed]
    if outside:
        raise ExchangeError({"read_banks": f"not allow-listed for {partner.name}: {', '.join(outside)}; "
                                           "add them to the partner's policy first"})
    if not read_banks and not write and not feedback:
        raise ExchangeError({"scope": "a key must be able to read a bank, write, or send feedback"})
    with transaction.atomic():
        row, key = api_key_create(kind=ApiKey.Kind.PARTNER, name=name or f"{partner.name} exchange", actor=actor)
        row.partner = partner
        row.save(update_fields=["partner"])
        scope = KeyScope.objects.create(api_key=row, write_bank=partner_write_bank(partner) if write else None,
                                        feedback=feedback)
        scope.read_banks.set(read_banks)
        audit_record(actor=actor, action="partner.key_scoped", object_type="api_key", object_id=row.pk,
                     data={"partner": partner.name, "prefix": row.prefix, "read_banks": [b.name for b in read_banks],
                           "write_bank": scope.write_bank.name if scope.write_bank else None, "feedback": feedback})
    return row, key


def partner_key_rotate(*, api_key: ApiKey, actor: str = SYSTEM) -> tuple[ApiKey, str]:
    """A new key with the same scope; the old one is revoked in the same transaction. Shown only now."""
    with transaction.atomic():
        old = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if old.revoked_at is not None or old.partner is None:
            raise ExchangeError({"key": "only an active partner key can be rotated"})
        scope = KeyScope.objects.filter(api_key=old).first()
        row, key = api_key_create(kind=ApiKey.Kind.PARTNER, name=old.name, actor=actor)
        row.partner = old.partner
        row.save(update_fields=["partner"])
        if scope is not None:
            new_scope = KeyScope.objects.create(api_key=row, write_bank=scope.write_bank, feedback=scope.feedback)
            new_scope.read_banks.set(scope.read_banks.all())
        old.revoked_at = timezone.now()
        old.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_key.rotated", object_type="api_key", object_id=old.pk,
                     data={"partner": old.partner.name, "old_prefix": old.prefix, "new_prefix": row.prefix})
        api_key_forget({old.pk})  # this process at once; the others within TAKEDOWN_API_KEY_CACHE_SECONDS
    return row, key


def key_readable_banks(api_key: ApiKey) -> list[Bank]:
    """Banks this key may read now: its scope, cut down to the partner's allow-list, enabled ones only."""
    scope = KeyScope.objects.filter(api_key=api_key).first()
    if scope is None or api_key.partner is None:
        return []
    allowed = set(partner_policy(api_key.partner).allowed_banks.values_list("pk", flat=True))
    return [b for b in scope.read_banks.all() if b.pk in allowed]


# --- Pushed batches and feedback from partners ------------------------------------------------------

PUSH_STATUSES = (BankEntry.Status.ACTIVE, BankEntry.Status.WITHDRAWN, BankEntry.Status.DELETED)
_CASE_REF = re.compile(r"^[A-Za-z0-9_.:-]{0,64}$")


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
        case_ref = row.get("case_ref") or ""
        if not isinstance(case_ref, str) or not _CASE_REF.fullmatch(case_ref):
            errors[f"{where}.case_ref"] = "up to 64 letters, digits and . _ : -"
            continue
        try:
            tags = clean_tags(row.get("tags"), field_name=f"{where}.tags")
        except ExchangeError as exc:
            errors.update(exc.errors)
            continue
        parsed.append(HashRow(signal_type=algorithm.name, value=value.lower(), status=str(status), tags=tags,
                              case_ref=case_ref))
    if errors:
        raise ExchangeError(errors)
    return parsed


@dataclass
class ApplyResult:
    added: int = 0
    withdrawn: int = 0
    unchanged: int = 0


def hash_rows_apply(*, bank: Bank, rows: Sequence[HashRow], partner: Partner) -> ApplyResult:
    """Bring ``bank`` to the state the rows describe, through ``hashing.banks`` (so matchers see it), in the
    caller's transaction. The last row for one (signal type, value) wins. Idempotent."""
    latest: dict[tuple[str, str], HashRow] = {}
    for row in rows:
        latest.pop((row.signal_type, row.value), None)
        latest[(row.signal_type, row.value)] = row
    source = f"partner:{partner.name}"[:200]
    active = [r for r in latest.values() if r.status == BankEntry.Status.ACTIVE]
    result = ApplyResult()
    with transaction.atomic():
        if active:
            imported = bank_import_entries(bank=bank, rows=[ImportRow(line=0, algorithm=r.signal_type, value=r.value)
                                                            for r in active],
                                           source=source, batch_rows=len(active))
            result.added, result.unchanged = imported.added, imported.unchanged
        for status in (BankEntry.Status.WITHDRAWN, BankEntry.Status.DELETED):
            gone = [(r.signal_type, r.value) for r in latest.values() if r.status == status]
            if gone:
                changed = bank_withdraw_entries(bank=bank, hashes=gone, status=status)
                result.withdrawn += changed
                result.unchanged += len(gone) - changed
                _tombstones_add(bank, gone, status, source)
        _shared_entries_set(bank, list(latest.values()), partner)
    return result


def _tombstones_add(bank: Bank, hashes: list[tuple[str, str]], status: str, source: str) -> None:
    """Keep a withdrawn or deleted hash we never held active as a tombstone, so this bank mirrors the origin
    (and our own feed passes the tombstone on). Tombstones never match; the change is logged for matchers."""
    existing: set[tuple[str, str]] = set()
    for algorithm in {a for a, _ in hashes}:
        values = [v for a, v in hashes if a == algorithm]
        for start in range(0, len(values), 5000):
            existing.update((algorithm, v) for v in BankEntry.objects.filter(
                bank=bank, algorithm=algorithm, value__in=values[start:start + 5000]).values_list("value", flat=True))
    created = BankEntry.objects.bulk_create([
        BankEntry(bank=bank, algorithm=a, value=v, status=status, source=source)
        for a, v in hashes if (a, v) not in existing])
    bank_entries_changed([e.pk for e in created])


def _shared_entries_set(bank: Bank, rows: list[HashRow], partner: Partner) -> None:
    """Upsert the exchange metadata (origin partner, tags, origin's case reference) of these entries."""
    wanted = {(r.signal_type, r.value): r for r in rows}
    ids: dict[tuple[str, str], int] = {}
    for algorithm in {a for a, _ in wanted}:
        values = [v for a, v in wanted if a == algorithm]
        for start in range(0, len(values), 5000):
            for entry_id, value in BankEntry.objects.filter(
                    bank=bank, algorithm=algorithm, value__in=values[start:start + 5000]).values_list("id", "value"):
                ids[(algorithm, value)] = entry_id
    SharedEntry.objects.bulk_create(
        [SharedEntry(entry_id=entry_id, partner=partner, tags=wanted[key].tags, case_ref=wanted[key].case_ref)
         for key, entry_id in ids.items()],
        update_conflicts=True, unique_fields=["entry"], update_fields=["partner", "tags", "case_ref"],
        batch_size=2000)


def hashes_push(*, api_key: ApiKey, rows: object) -> ApplyResult:
    """A partner's batch into its key's write bank: every row checked first, then all saved in one
    transaction (nothing half-saved), audited. Idempotent by (partner, signal type, value)."""
    scope = KeyScope.objects.filter(api_key=api_key).select_related("write_bank").first()
    if scope is None or scope.write_bank is None or api_key.partner is None:
        raise PermissionError("this key may not push hashes")
    parsed = parse_hash_rows(rows, field_name="records")
    if len(parsed) > _max_batch_rows():
        raise ExchangeError({"records": f"at most {_max_batch_rows()} records per batch"})
    with transaction.atomic():
        result = hash_rows_apply(bank=scope.write_bank, rows=parsed, partner=api_key.partner)
        audit_record(actor=f"partner:{api_key.partner.pk}", action="exchange.hashes_pushed", object_type="bank",
                     object_id=scope.write_bank.pk,
                     data={"partner": api_key.partner.name, "key": api_key.prefix, "rows": len(parsed),
                           "added": result.added, "withdrawn": result.withdrawn, "unchanged": result.unchanged})
    return result


def _max_batch_rows() -> int:
    from django.conf import settings

    return int(settings.TAKEDOWN_EXCHANGE_MAX_BATCH_ROWS)


def feedback_submit(*, api_key: ApiKey, rows: object) -> list[HashFeedback]:
    """A partner's verdicts on hashes this instance shares with it: each row names the hash
    (signal_type, value), a verdict and tags. Every row is checked first; all are recorded in one
    transaction. A hash the key cannot read is refused, naming the row."""
    scope = KeyScope.objects.filter(api_key=api_key).first()
    partner = api_key.partner
    if scope is None or not scope.feedback or partner is None:
        raise PermissionError("this key may not send feedback")
    if not isinstance(rows, list):
        raise ExchangeError({"feedback": "must be a list of verdicts"})
    if len(rows) > _max_batch_rows():
        raise ExchangeError({"feedback": f"at most {_max_batch_rows()} rows per batch"})
    banks = key_readable_banks(api_key)
    errors: dict[str, str] = {}
    plan: list[tuple[list[BankEntry], str, list[str]]] = []
    for i, row in enumerate(rows):
        where = f"feedback[{i}]"
        try:
            [hash_row] = parse_hash_rows([{k: v for k, v in row.items() if k in ("signal_type", "value")}]
                                         if isinstance(row, dict) else [row], field_name="feedback")
        except ExchangeError as exc:
            errors.update({k.replace("feedback[0]", where): v for k, v in exc.errors.items()})
            continue
        verdict = row.get("verdict")
        if verdict not in HashFeedback.Verdict.values:
            errors[f"{where}.verdict"] = f"use one of {', '.join(HashFeedback.Verdict.values)}"
            continue
        try:
            tags = clean_tags(row.get("tags"), field_name=f"{where}.tags")
        except ExchangeError as exc:
            errors.update(exc.errors)
            continue
        entries = list(BankEntry.objects.filter(bank__in=banks, algorithm=hash_row.signal_type, value=hash_row.value))
        if not entries:
            errors[f"{where}.value"] = "not a hash this instance shares with you"
            continue
        plan.append((entries, str(verdict), tags))
    if errors:
        raise ExchangeError(errors)
    recorded: list[HashFeedback] = []
    with transaction.atomic():
        for entries, verdict, tags in plan:
            for entry in entries:
                recorded.append(feedback_record(entry=entry, partner=partner, verdict=verdict, tags=tags,
                                                actor=f"partner:{partner.pk}"))
    return recorded


def signature_rejected(*, partner: Partner | None, what: str, detail: dict[str, Any]) -> None:
    """Audit a request or page whose signature did not verify against the pinned keys."""
    audit_record(actor=f"partner:{partner.pk}" if partner else SYSTEM, action="exchange.signature_rejected",
                 object_type="partner", object_id=partner.pk if partner else "", data={"what": what, **detail})


def entry_tags_set(*, entry: BankEntry, tags: Sequence[str], partner: Partner | None = None,
                   case_ref: str = "") -> SharedEntry:
    """Set the exchange metadata of one entry (its tags, the partner it came from, the origin's opaque case
    reference). Raises :class:`ExchangeError` for bad tags or case reference."""
    clean = clean_tags(list(tags))
    if not _CASE_REF.fullmatch(case_ref):
        raise ExchangeError({"case_ref": "up to 64 letters, digits and . _ : -"})
    shared, _ = SharedEntry.objects.update_or_create(
        entry=entry, defaults={"tags": clean, "partner": partner, "case_ref": case_ref})
    return shared


# --- Our own verdicts, from moderators' decisions ---------------------------------------------------

def partner_entries_matched(report: Any) -> list[BankEntry]:
    """Bank entries from partners (a partner bank such as StopNCII's or a remote's, or an entry whose
    exchange metadata names a partner) that the media of ``report``'s items matched."""
    return list(BankEntry.objects.filter(matches__media__reported_items__report=report)
                .filter(Q(bank__kind=Bank.Kind.PARTNER) | Q(exchange__partner__isnull=False))
                .distinct().order_by("pk"))


def _blocked_by_another_case(entry: BankEntry, report: Any) -> bool:
    from moderation.models import Report

    return (Report.objects.filter(items__media__matches__bank_entry=entry,
                                  status__in=[Report.Status.ACTIONING, Report.Status.REMOVED])
            .exclude(pk=report.pk).exists())


def own_verdicts_record(*, decision: Any, reversed_on_appeal: bool = False) -> list[HashFeedback]:
    """Record this instance's verdict on every partner hash the decided case matched (``partner=None``
    rows, which the sync client and the StopNCII feedback job send back to the hash's origin).

    A takedown gives "blocked"; no violation, or a takedown reversed on appeal, gives "not_blocked" —
    except on an entry that another case, still removed, matched: that stays "blocked". Other outcomes
    (needs information, child safety) record nothing. Call inside the deciding transaction.
    """
    from moderation.audit import actor_for_user
    from moderation.models import Decision

    if reversed_on_appeal:
        wanted = HashFeedback.Verdict.NOT_BLOCKED
    elif decision.outcome == Decision.Outcome.TAKEDOWN:
        wanted = HashFeedback.Verdict.BLOCKED
    elif decision.outcome == Decision.Outcome.NO_VIOLATION:
        wanted = HashFeedback.Verdict.NOT_BLOCKED
    else:
        return []
    actor = actor_for_user(decision.decided_by) if decision.decided_by_id else SYSTEM
    recorded = []
    for entry in partner_entries_matched(decision.report):
        verdict = wanted
        if verdict == HashFeedback.Verdict.NOT_BLOCKED and _blocked_by_another_case(entry, decision.report):
            verdict = HashFeedback.Verdict.BLOCKED
        recorded.append(feedback_record(entry=entry, partner=None, verdict=verdict, actor=actor))
    return recorded
