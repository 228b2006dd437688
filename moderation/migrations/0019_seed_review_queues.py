"""The default queues and routing rules (admins change them in the console: /console/routing/)."""

from typing import Any

from django.db import migrations

from moderation.queue_defaults import queues_seed_into


def seed(apps: Any, schema_editor: Any) -> None:
    queues_seed_into(apps.get_model("moderation", "Queue"), apps.get_model("moderation", "RoutingRule"))


class Migration(migrations.Migration):
    dependencies = [("moderation", "0018_review_queues_routing_holds_mutes")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
