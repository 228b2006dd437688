"""The CLIP embedding of a media item (docs/model-card.md, *Embedding probe*): computed once per sha256."""

from __future__ import annotations

from django.db import models

from moderation.models.media import Media


class MediaEmbedding(models.Model):
    """512 float32 describing the image's content, as `detection.embedding` computes them; not the image and
    not reversible into it (docs/security.md). Deleted with the media."""

    media = models.OneToOneField(Media, on_delete=models.CASCADE, related_name="embedding")
    encoder = models.CharField(max_length=40)  # detection.embedding.ENCODER_NAME
    encoder_sha256 = models.CharField(max_length=64)
    vector = models.BinaryField()  # detection.embedding.to_bytes: 2,048 bytes
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"embedding of media {self.media_id} ({self.encoder})"
