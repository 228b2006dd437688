"""Hashing for HMA's routes: an upload or a fetched URL into HMA's signal types, with HMA's rules.

- An upload is a multipart form with exactly one file, in a field named for its content type (``photo`` or
  ``video``), as HMA asks.
- ``photo`` gives ``pdq`` (Takedown's PDQ, which agrees with Meta's; "" when the quality is below 50, as
  HMA answers); ``video`` gives ``video_md5``, the MD5 of the file.
- ``types`` (comma-separated) picks among the content type's signal types.
- A URL is fetched only from ``TAKEDOWN_HMA_FETCH_HOSTS``, through the safe fetcher (public addresses only,
  size and time limits, the type read from the bytes); the content type comes from the bytes unless given.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
from django.conf import settings
from django.http import HttpRequest

from hashing.decode import open_for_hashing
from hashing.pdq import pdq_hash_array, pdq_hash_scaled
from moderation.hma.responses import HmaError
from moderation.platforms.base import ContentNotFound, ContentUnfetchable, PlatformError, PlatformRefused
from moderation.platforms.fetch import FetchPolicy, SafeFetcher
from moderation.selectors.hma import CONTENT_TYPES

logger = logging.getLogger(__name__)

# HMA's PdqSignal answers "" for a photo whose PDQ quality is below this: too flat to match reliably.
PDQ_MIN_QUALITY = 50


def photo_pdq(data: bytes) -> str:
    """The photo's PDQ hash as hex, or "" when its quality is below ``PDQ_MIN_QUALITY``."""
    decoded = open_for_hashing(data)
    pixels = np.asarray(decoded.image)
    if pixels.ndim == 3 and decoded.full_size == decoded.image.size:
        value, quality = pdq_hash_array(pixels)
    else:
        value, quality = pdq_hash_scaled(pixels, full_size=decoded.full_size)
    return value if quality >= PDQ_MIN_QUALITY else ""


def signal_types(content_type: str, types: str | None) -> tuple[str, ...]:
    """The signal types to hash ``content_type`` into: all of its own, or those ``types`` names."""
    if content_type not in CONTENT_TYPES:
        raise HmaError(400, f"no such content_type: '{content_type}'")
    own = CONTENT_TYPES[content_type]
    if types is None:
        return own
    chosen: list[str] = []
    for name in (part.strip() for part in types.split(",")):
        if not name:
            continue
        if name not in own:
            raise HmaError(400, f"signal type '{name}' doesn't exist or is disabled")
        chosen.append(name)
    if not chosen:
        raise HmaError(400, "empty signal type selection")
    return tuple(dict.fromkeys(chosen))


def hash_content(content_type: str, data: bytes, types: str | None = None) -> dict[str, str]:
    """``{signal type: value}`` of ``data`` as ``content_type``. Raises ``HmaError`` and ``MediaError``."""
    wanted = signal_types(content_type, types)
    hashes: dict[str, str] = {}
    for name in wanted:
        if name == "pdq":
            hashes[name] = photo_pdq(data)
        elif name == "video_md5":
            hashes[name] = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return hashes


def uploaded(request: HttpRequest) -> tuple[str, bytes]:
    """``(content type, bytes)`` of the one file uploaded, checked as HMA checks it."""
    if not request.FILES:
        raise HmaError(400, "Missing multipart/form-data file upload")
    fields = list(request.FILES.keys())
    if len(fields) > 1 or len(request.FILES.getlist(fields[0])) > 1:
        raise HmaError(400, "Only one file allowed per request")
    content_type = fields[0]
    if content_type not in CONTENT_TYPES:
        raise HmaError(400, f"no such content_type: '{content_type}'; name the file field photo or video")
    upload = request.FILES.getlist(content_type)[0]
    limit = settings.TAKEDOWN_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise HmaError(413, f"The file is larger than {limit // (1024 * 1024)} MB; send a smaller copy")
    return content_type, upload.read()


def fetched(url: str, content_type: str | None) -> tuple[str, bytes]:
    """``(content type, bytes)`` of the media at ``url``, fetched under ``TAKEDOWN_HMA_FETCH_HOSTS``."""
    hosts = list(settings.TAKEDOWN_HMA_FETCH_HOSTS)
    if not hosts:
        raise HmaError(400, "This server does not fetch URLs: upload the file instead (POST, multipart field "
                            "photo or video), or ask its operator to list the host in TAKEDOWN_HMA_FETCH_HOSTS")
    if content_type is not None and content_type not in CONTENT_TYPES:
        raise HmaError(400, f"no such content_type: '{content_type}'")
    try:
        policy = FetchPolicy.from_settings(hosts)
    except ValueError as exc:
        logger.error("TAKEDOWN_HMA_FETCH_HOSTS cannot be used: %s", exc)
        raise HmaError(503, "This server's URL fetching is misconfigured; upload the file instead") from None
    try:
        media = SafeFetcher(policy, purpose="hma").download(url, location=url)
    except (ContentUnfetchable, ContentNotFound, PlatformError, PlatformRefused) as exc:
        raise HmaError(400, f"Failed to fetch URL: {exc}") from None
    except ValueError:
        raise HmaError(400, "Invalid or unsafe URL provided") from None
    try:
        with media.open() as handle:
            data = handle.read()
    finally:
        media.discard()
    if content_type is None:
        if media.content_type.startswith("image/"):
            content_type = "photo"
        elif media.content_type.startswith("video/"):
            content_type = "video"
        else:
            raise HmaError(400, f"unsupported url ContentType: '{media.content_type}', if you know the expected "
                                "type, provide it with the content_type query param")
    return content_type, data
