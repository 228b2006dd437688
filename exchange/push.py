"""Hashes pushed by partners: a batch into the write bank of the pushing key, checked whole, then saved whole."""

from __future__ import annotations

from django.db import transaction

from exchange.entries import ApplyResult, hash_rows_apply
from exchange.models import KeyScope
from exchange.validation import ExchangeError, max_batch_rows, parse_hash_rows
from moderation.audit import audit_record
from moderation.models import ApiKey


def hashes_push(*, api_key: ApiKey, rows: object) -> ApplyResult:
    """A partner's batch into its key's write bank: every row checked first, then all saved in one
    transaction (nothing half-saved), audited. Idempotent by (partner, signal type, value)."""
    scope = KeyScope.objects.filter(api_key=api_key).select_related("write_bank").first()
    if scope is None or scope.write_bank is None or api_key.partner is None:
        raise PermissionError("this key may not push hashes")
    parsed = parse_hash_rows(rows, field_name="records")
    if len(parsed) > max_batch_rows():
        raise ExchangeError({"records": f"at most {max_batch_rows()} records per batch"})
    with transaction.atomic():
        result = hash_rows_apply(bank=scope.write_bank, rows=parsed, partner=api_key.partner)
        audit_record(actor=f"partner:{api_key.partner.pk}", action="exchange.hashes_pushed", object_type="bank",
                     object_id=scope.write_bank.pk,
                     data={"partner": api_key.partner.name, "key": api_key.prefix, "rows": len(parsed),
                           "added": result.added, "withdrawn": result.withdrawn, "unchanged": result.unchanged})
    return result
