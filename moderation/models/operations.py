"""What the running system records about itself: the scheduler's heartbeat."""

from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """The last time a periodic job ran: ``scheduler`` is written by the beat task ``scheduler_heartbeat``.

    ``/readyz`` reads it (``services/readiness.py``). In the database, so that every web process sees the
    one written by a worker whatever the cache and the broker are.
    """

    name = models.CharField(max_length=50, primary_key=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
