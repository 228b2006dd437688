from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.models import WebhookDelivery
from moderation.services.webhooks import dead_letters, delivery_replay


class Command(BaseCommand):
    help = "List webhook dead letters, or replay one (--replay ID) or all (--replay-all)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--replay", type=int, default=None, metavar="ID")
        parser.add_argument("--replay-all", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["replay"] is not None:
            if not WebhookDelivery.objects.filter(pk=options["replay"]).exists():
                raise CommandError(f"No webhook delivery {options['replay']}.")
            ids = [options["replay"]]
        elif options["replay_all"]:
            ids = [d.pk for d in dead_letters()]
        else:
            for d in dead_letters():
                self.stdout.write(f"{d.pk}\t{d.event}\t{d.attempts} attempts\t{d.created_at:%Y-%m-%d %H:%M}\t"
                                  f"{d.last_error}")
            return
        for delivery_id in ids:
            delivery = delivery_replay(delivery_id=delivery_id)
            self.stdout.write(f"{delivery.pk}\t{delivery.status}")
