"""Receivers of moderation's signals: our own verdicts on partners' hashes follow moderators' decisions."""

from __future__ import annotations

from typing import Any

from exchange.services import own_verdicts_record


def on_decision_carried_out(sender: Any, *, decision: Any, **kwargs: Any) -> None:
    own_verdicts_record(decision=decision)


def on_decision_reversed(sender: Any, *, decision: Any, **kwargs: Any) -> None:
    own_verdicts_record(decision=decision, reversed_on_appeal=True)
