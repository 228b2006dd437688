"""The model registry in the database: which learned-model versions score in production and how.

Exactly one version is *active* at a time (its score drives triage) or none (the shipped default
weights are used); any number may run in *shadow*: they are scored and stored beside the active
score, never used for priority, until an admin promotes one. Each version keeps its evaluation.
That holds per kind: the artefact network and the embedding probe are versioned side by side.
"""

from __future__ import annotations

from django.db import models


class DetectorVersion(models.Model):
    class Status(models.TextChoices):
        SHADOW = "shadow", "Shadow (scored and stored, not used for priority)"
        ACTIVE = "active", "Active (drives the score used for priority)"
        RETIRED = "retired", "Retired"

    class Kind(models.TextChoices):
        ARTEFACT = "artefact", "Artefact network (the model signal)"
        PROBE = "probe", "Embedding probe (the embedding signal)"

    version = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ARTEFACT, db_index=True)
    weights_path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SHADOW, db_index=True)
    evaluation = models.JSONField(default=dict, blank=True)  # copied from the weights' card
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "status"], condition=models.Q(status="active"), name="detector_one_active_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.status})"
