from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from moderation.services.deadlines import deadlines_check


class Command(BaseCommand):
    help = "Send due deadline reminders (50 %, 80 %) and escalate breaches now (Celery beat does this every 5 min)."

    def handle(self, *args: Any, **options: Any) -> None:
        run = deadlines_check()
        self.stdout.write(f"{len(run.reminders)} reminders, {len(run.escalations)} escalations")
