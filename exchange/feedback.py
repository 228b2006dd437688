"""Verdicts on shared hashes: partners' feedback sent to our API, and our own verdicts, which follow
moderators' decisions (the receivers of moderation's decision signals, connected in ``ExchangeConfig.ready``).

Both are recorded through :func:`exchange.entries.feedback_record`, which re-triages the cases that matched
a hash when a partner's verdict on it turns to or from "blocked".
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q

from exchange.entries import feedback_record
from exchange.models import HashFeedback, KeyScope
from exchange.selectors import key_readable_banks
from exchange.validation import ExchangeError, clean_tags, max_batch_rows, parse_hash_rows
from hashing.models import Bank, BankEntry
from moderation.audit import SYSTEM, actor_for_user
from moderation.models import ApiKey, Decision, Report


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
    if len(rows) > max_batch_rows():
        raise ExchangeError({"feedback": f"at most {max_batch_rows()} rows per batch"})
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


# --- Our own verdicts, from moderators' decisions ---------------------------------------------------

def partner_entries_matched(report: Report) -> list[BankEntry]:
    """Bank entries from partners (a partner bank such as StopNCII's or a remote's, or an entry whose
    exchange metadata names a partner) that the media of ``report``'s items matched."""
    return list(BankEntry.objects.filter(matches__media__reported_items__report=report)
                .filter(Q(bank__kind=Bank.Kind.PARTNER) | Q(exchange__partner__isnull=False))
                .distinct().order_by("pk"))


def _blocked_by_another_case(entry: BankEntry, report: Report) -> bool:
    return (Report.objects.filter(items__media__matches__bank_entry=entry,
                                  status__in=[Report.Status.ACTIONING, Report.Status.REMOVED])
            .exclude(pk=report.pk).exists())


def own_verdicts_record(*, decision: Decision, reversed_on_appeal: bool = False) -> list[HashFeedback]:
    """Record this instance's verdict on every partner hash the decided case matched (``partner=None``
    rows, which the sync client and the StopNCII feedback job send back to the hash's origin).

    A takedown gives "blocked"; no violation, or a takedown reversed on appeal, gives "not_blocked" —
    except on an entry that another case, still removed, matched: that stays "blocked". Other outcomes
    (needs information, child safety) record nothing. Call inside the deciding transaction.
    """
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


def on_decision_carried_out(sender: Any, *, decision: Decision, **kwargs: Any) -> None:
    """Receiver of ``moderation.signals.decision_carried_out``."""
    own_verdicts_record(decision=decision)


def on_decision_reversed(sender: Any, *, decision: Decision, **kwargs: Any) -> None:
    """Receiver of ``moderation.signals.decision_reversed``."""
    own_verdicts_record(decision=decision, reversed_on_appeal=True)
