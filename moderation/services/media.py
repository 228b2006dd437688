"""Storing media privately, deduplicated by SHA-256."""

from __future__ import annotations

import hashlib
import os

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.urls import reverse

from hashing.decode import ImageInfo, probe
from hashing.errors import MediaTooLarge
from hashing.video import VIDEO_MIMES, VideoInfo, looks_like_video, probe_video
from moderation.models import Media
from moderation.security.crypto import decrypt_media, encrypt_media

MIB = 1024 * 1024
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
        media.file.save(name, ContentFile(encrypt_media(data)), save=False)
    try:
        with transaction.atomic():
            media.save()
    except IntegrityError:
        # Stored concurrently by another request; the file name is content-addressed, so the
        # file we wrote is the same bytes and stays.
        return Media.objects.get(sha256=sha256)
    return media


def media_store_file(*, path: str | os.PathLike[str], origin: str, max_bytes: int) -> Media:
    """``media_store`` for bytes a platform adapter spooled to a private file (``FetchedMedia.path``), which the
    safe fetcher already capped at ``max_bytes``. The file is read once here to validate, hash and encrypt it;
    the caller removes it."""
    size = os.path.getsize(path)
    if size > max_bytes:  # the fetcher stops at the cap; an adapter's own file is checked here
        raise MediaTooLarge(f"The file is {size // MIB} MB, more than the {max_bytes // MIB} MB Takedown accepts.")
    with open(path, "rb") as handle:
        data = handle.read()
    return media_store(data=data, origin=origin)


def media_read(media: Media) -> bytes:
    """The original bytes of stored media: every reader goes through here (files are encrypted at rest)."""
    with media.file.open("rb") as handle:
        return decrypt_media(handle.read())


def media_write_raw(media: Media, blob: bytes) -> None:
    """Replace the stored file's bytes (already encrypted) in place; used by key rotation."""
    path = media.file.path
    tmp = f"{path}.rotating"
    with open(tmp, "wb") as handle:
        handle.write(blob)
    os.replace(tmp, path)


# Signed media links: the console's media URLs carry a signature binding the media id to one user and
# expiring after TAKEDOWN_MEDIA_URL_SECONDS, so a copied link is useless to anyone else and soon to everyone.
_MEDIA_URL_SALT = "takedown.console.media"


class MediaLinkInvalid(Exception):
    """The media link is expired, altered, or made for someone else."""


def media_signed_url(*, media_id: int, user_id: int) -> str:
    token = signing.TimestampSigner(salt=_MEDIA_URL_SALT).sign(f"{media_id}.{user_id}")
    return f"{reverse('console:media', args=[media_id])}?sig={token}"


def media_link_check(*, media_id: int, user_id: int, token: str) -> None:
    """Raise ``MediaLinkInvalid`` unless ``token`` was signed for this media and user and has not expired."""
    signer = signing.TimestampSigner(salt=_MEDIA_URL_SALT)
    try:
        value = signer.unsign(token, max_age=settings.TAKEDOWN_MEDIA_URL_SECONDS)
    except signing.SignatureExpired as exc:
        raise MediaLinkInvalid("This media link has expired. Reload the case page.") from exc
    except signing.BadSignature as exc:
        raise MediaLinkInvalid("This media link is not valid.") from exc
    if value != f"{media_id}.{user_id}":
        raise MediaLinkInvalid("This media link was made for another media item or another moderator.")
