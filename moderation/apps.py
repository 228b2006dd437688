from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = "Moderation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from moderation.platforms import atproto, generic, webhook  # noqa: F401 - register the platform settings checks
        from moderation.roles import roles_sync
        from moderation.security import checks  # noqa: F401 - registers the media-key system checks

        post_migrate.connect(roles_sync, sender=self, dispatch_uid="takedown-roles-sync")
        from moderation.queue_defaults import queues_seed

        post_migrate.connect(queues_seed, sender=self, dispatch_uid="takedown-queues-seed")

        from detection.versions import detector_promoted
        from moderation.services.probe_training import detector_promoted_record

        detector_promoted.connect(detector_promoted_record, dispatch_uid="moderation-audit-detector-promoted")
