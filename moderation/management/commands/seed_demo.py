from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from moderation.services.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo


class Command(BaseCommand):
    help = "Create the demo platform, demo bank and demo users (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = seed_demo()
        self.stdout.write(f"Demo data: {summary.items_created} items and {summary.bank_entries_added} bank "
                          f"entries added; users created: {', '.join(summary.users_created) or 'none'}.")
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}): {', '.join(DEMO_USERS)}")
