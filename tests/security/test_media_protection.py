"""Reported media: encrypted on disk, and shown only through short-lived links signed for one moderator
allowed to see it, never cached."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from moderation.models import Media
from moderation.roles import MODERATOR, TRIAGE
from moderation.security.crypto import MAGIC, MediaDecryptError, key_id_of
from moderation.services.media import (
    MediaLinkInvalid,
    media_link_check,
    media_read,
    media_signed_url,
    media_store,
)
from tests.conftest import make_image_bytes
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db


def _key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture
def stored() -> tuple[Media, bytes]:
    data = make_image_bytes(11, size=(320, 240))
    return media_store(data=data, origin=Media.Origin.UPLOAD), data


def _raw(media: Media) -> bytes:
    return Path(media.file.path).read_bytes()


def test_the_file_on_disk_holds_no_image_bytes(stored: tuple[Media, bytes]) -> None:
    media, data = stored
    raw = _raw(media)
    assert raw.startswith(MAGIC) and key_id_of(raw) == "test-1"
    assert data[:64] not in raw and data[-64:] not in raw and data[1000:1064] not in raw
    assert b"JFIF" not in raw and b"\xff\xd8\xff" not in raw
    assert media_read(media) == data  # every reader gets the original bytes back


def test_an_altered_file_is_refused_not_served(stored: tuple[Media, bytes]) -> None:
    media, _data = stored
    raw = bytearray(_raw(media))
    raw[-5] ^= 0x01
    Path(media.file.path).write_bytes(bytes(raw))
    with pytest.raises(MediaDecryptError, match="integrity"):
        media_read(media)


def test_rotation_re_encrypts_every_file_under_the_new_key(stored: tuple[Media, bytes], settings: Any,
                                                           tmp_path: Path) -> None:
    media, data = stored
    old = settings.TAKEDOWN_MEDIA_KEYS[0]
    # A plaintext file from before encryption was configured is read as it is, and rotation encrypts it.
    legacy = Media.objects.create(sha256="ab" * 32, md5="0" * 32, mime="image/png", size_bytes=3,
                                  origin=Media.Origin.UPLOAD)
    plain = make_image_bytes(12, fmt="PNG")
    legacy.file.save("legacy.png", ContentFile(plain))
    assert media_read(legacy) == plain
    settings.TAKEDOWN_MEDIA_KEYS = [_key("k2"), old]
    assert media_read(media) == data  # the old key still decrypts until rotation is done
    call_command("rotate_media_key")
    assert key_id_of(_raw(media)) == "k2" and key_id_of(_raw(legacy)) == "k2"
    settings.TAKEDOWN_MEDIA_KEYS = settings.TAKEDOWN_MEDIA_KEYS[:1]  # the old key can now be dropped
    assert media_read(media) == data and media_read(legacy) == plain
    settings.TAKEDOWN_MEDIA_KEYS = [_key("k3")]  # a key list missing the file's key says so
    with pytest.raises(MediaDecryptError, match="k2"):
        media_read(media)
    with pytest.raises(CommandError):
        call_command("rotate_media_key")


@pytest.fixture
def case_media(stored: tuple[Media, bytes]) -> tuple[int, int, bytes]:
    media, data = stored
    task = make_case()
    item = task.report.items.get()
    item.media = media
    item.save()
    return task.pk, media.pk, data


@pytest.fixture
def mod() -> User:
    return user_with_role("mia-moderator", MODERATOR)


def test_the_case_page_links_media_signed_for_the_viewer_and_it_streams_uncached(
        case_media: tuple[int, int, bytes], mod: User, client: Client) -> None:
    task_id, media_id, data = case_media
    client.force_login(mod)
    page = client.get(f"/console/case/{task_id}").content.decode()
    link = media_signed_url(media_id=media_id, user_id=mod.pk)
    assert f'src="{link}"' in page
    response = client.get(link)
    assert response.status_code == 200 and response.content == data
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_a_link_without_a_signature_is_refused(case_media: tuple[int, int, bytes], mod: User, client: Client) -> None:
    client.force_login(mod)
    assert client.get(f"/console/media/{case_media[1]}").status_code == 403


def test_a_tampered_link_is_refused(case_media: tuple[int, int, bytes], mod: User, client: Client) -> None:
    client.force_login(mod)
    link = media_signed_url(media_id=case_media[1], user_id=mod.pk)
    assert client.get(link[:-2] + ("AA" if not link.endswith("AA") else "BB")).status_code == 403
    other = make_case(pdq="e" * 64).report.items.get().media
    # A valid signature for this media, pasted onto another media id.
    assert client.get(f"/console/media/{other.pk}?{link.split('?', 1)[1]}").status_code == 403


def test_another_moderators_link_is_refused(case_media: tuple[int, int, bytes], mod: User, client: Client) -> None:
    colleague = user_with_role("cole-moderator", MODERATOR)
    client.force_login(mod)
    link = media_signed_url(media_id=case_media[1], user_id=colleague.pk)
    assert client.get(link).status_code == 403
    with pytest.raises(MediaLinkInvalid, match="another"):
        media_link_check(media_id=case_media[1], user_id=mod.pk, token=link.split("sig=", 1)[1])


def test_an_expired_link_is_refused(case_media: tuple[int, int, bytes], mod: User, client: Client,
                                    settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client.force_login(mod)
    link = media_signed_url(media_id=case_media[1], user_id=mod.pk)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + settings.TAKEDOWN_MEDIA_URL_SECONDS + 5)
    assert client.get(link).status_code == 403
    with pytest.raises(MediaLinkInvalid, match="expired"):
        media_link_check(media_id=case_media[1], user_id=mod.pk, token=link.split("sig=", 1)[1])


def test_a_role_without_media_permission_is_refused_even_with_a_link_signed_for_it(
        case_media: tuple[int, int, bytes], client: Client) -> None:
    triage = user_with_role("tia-triage", TRIAGE)
    client.force_login(triage)
    assert client.get(media_signed_url(media_id=case_media[1], user_id=triage.pk)).status_code == 403
    page = client.get(f"/console/case/{case_media[0]}").content.decode()
    assert "/console/media/" not in page
