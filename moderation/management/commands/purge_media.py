from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from moderation.services.retention import media_purge


class Command(BaseCommand):
    help = ("Delete media files of cases closed more than TAKEDOWN_MEDIA_RETENTION_DAYS ago. Hashes and the "
            "audit log are kept. Celery beat runs this daily (media-purge).")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=None,
                            help=f"retention in days (default {settings.TAKEDOWN_MEDIA_RETENTION_DAYS})")
        parser.add_argument("--dry-run", action="store_true", help="say what would be purged; change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        result = media_purge(days=options["days"], dry_run=options["dry_run"])
        verb = "would purge" if options["dry_run"] else "purged"
        self.stdout.write(f"{verb} {result.media_purged} media files from {len(result.reports)} closed cases")
