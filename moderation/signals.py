"""Signals moderation sends for other apps (the exchange listens); sent inside the deciding transaction.

- ``decision_carried_out(sender=Decision, decision=...)``: a takedown or no-violation decision was made
  (by a moderator, a confirmed proposal, or a reversed reporter's appeal).
- ``decision_reversed(sender=Decision, decision=..., appeal=...)``: an uploader's appeal reversed a takedown.

A receiver that raises rolls the decision back, so receivers only write rows that cannot fail on input.
"""

from __future__ import annotations

from django.dispatch import Signal

decision_carried_out = Signal()
decision_reversed = Signal()
