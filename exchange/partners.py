"""Partners of the exchange: their policy (auto-action, allow-listed banks, pinned public keys), their
scoped API keys and key rotation, and the local banks their hashes go to.

Every write is audited (``moderation.audit.audit_record``) in its own transaction; bad input raises
:class:`~exchange.validation.ExchangeError` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from exchange.models import KeyScope, PartnerPolicy
from exchange.signing import BadPublicKey, check_public_key
from exchange.validation import ExchangeError
from hashing.banks import bank_get_or_create
from hashing.models import Bank
from moderation.audit import SYSTEM, audit_record
from moderation.models import ApiKey, Partner
from moderation.services.api_keys import api_key_create, api_key_forget


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
            policy.partner = partner  # the audit's "after" reads the trust level through the policy
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
