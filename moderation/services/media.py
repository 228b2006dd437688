"""Storing media privately, deduplicated by SHA-256."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from hashing.decode import ImageInfo, probe
from hashing.video import VIDEO_MIMES, VideoInfo, looks_like_video, probe_video
from moderation.models import Media

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
               "image/tiff": "tif", "image/bmp": "bmp", "image/heic": "heic", "image/avif": "avif", **VIDEO_MIMES}

MediaInfo = ImageInfo | VideoInfo


def media_validate(data: bytes) -> MediaInfo:
    """Check the bytes are an image or video we can process; raises ``hashing.errors.MediaError`` subclasses.

    Videos are probed with PyAV within ``hashing.video``'s limits (header checks and one decoded frame).
    """
    if looks_like_video(data):
        return probe_video(data)
    return probe(data)


def media_store(*, data: bytes, origin: str, info: MediaInfo | None = None) -> Media:
    """The ``Media`` for these bytes, storing them if they are new. Identical bytes share one row."""
    sha256 = hashlib.sha256(data).hexdigest()
    existing = Media.objects.filter(sha256=sha256).first()
    if existing is not None:
        return existing
    info = info or media_validate(data)
    media = Media(
        sha256=sha256, md5=hashlib.md5(data, usedforsecurity=False).hexdigest(), mime=info.mime,
        size_bytes=len(data), width=info.width, height=info.height, origin=origin,
    )
    name = f"{sha256[:2]}/{sha256}.{_EXTENSIONS.get(info.mime, 'bin')}"
    if media.file.storage.exists(name):  # content-addressed: the same name holds the same bytes
        media.file.name = name
    else:
        media.file.save(name, ContentFile(data), save=False)
    try:
        with transaction.atomic():
            media.save()
    except IntegrityError:
        # Stored concurrently by another request; the file name is content-addressed, so the
        # file we wrote is the same bytes and stays.
        return Media.objects.get(sha256=sha256)
    return media


def media_read(media: Media) -> bytes:
    with media.file.open("rb") as handle:
        return handle.read()
