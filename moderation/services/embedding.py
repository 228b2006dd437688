"""Each media item's CLIP embedding, computed once per sha256 and stored with it (`MediaEmbedding`)."""

from __future__ import annotations

import logging

import numpy as np

from detection.embedding import ENCODER_NAME, ENCODER_SHA256, EncoderUnavailable, default_encoder, from_bytes, to_bytes
from detection.scoring import MAX_PIXELS
from detection.signals.base import open_untrusted
from moderation.models import Media, MediaEmbedding
from moderation.services.media import media_read

logger = logging.getLogger(__name__)


def media_embedding(*, media: Media, data: bytes | None = None) -> np.ndarray | None:
    """The media's embedding: the stored one, else computed from `data` (or the stored file) and stored.

    None when the encoder is unavailable or the file cannot be read as an image; the embedding signal then
    says why in the score's detail. A vector from another encoder file is computed again."""
    row = MediaEmbedding.objects.filter(media=media).first()
    if row is not None and row.encoder_sha256 == ENCODER_SHA256:
        return from_bytes(bytes(row.vector))
    try:
        encoder = default_encoder()
    except EncoderUnavailable as exc:
        logger.warning("Media %s not embedded: %s", media.pk, exc)
        return None
    try:
        with open_untrusted(data if data is not None else media_read(media)) as image:
            if image.width * image.height > MAX_PIXELS:  # scoring refuses it too, and says why
                return None
            vector = encoder.embed_one(image)
    except MemoryError:  # over the worker's memory limit: the task marks the media unprocessable
        raise
    except Exception as exc:  # unreadable or hostile file, or no stored file: scoring reports it
        logger.info("Media %s not embedded: %s", media.pk, type(exc).__name__)
        return None
    MediaEmbedding.objects.update_or_create(
        media=media, defaults={"encoder": ENCODER_NAME, "encoder_sha256": ENCODER_SHA256, "vector": to_bytes(vector)})
    return vector
