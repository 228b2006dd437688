"""Encryption of stored media at rest: AES-256-GCM with keys from ``TAKEDOWN_MEDIA_KEYS``.

A stored file is ``MAGIC | key-id length (1 byte) | key id | 12-byte nonce | ciphertext+tag``; the header
is authenticated as associated data, so a file cannot be moved to another key id unnoticed. The first
key in the setting encrypts; every listed key decrypts, which is how rotation works (add a new key in
front, run ``manage.py rotate_media_key``, then drop the old key). Files without the header are
plaintext written before encryption was configured: they are read as they are, and the rotation command
encrypts them.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MAGIC = b"TDENC1\x00"
_NONCE_BYTES = 12


class MediaDecryptError(Exception):
    """A stored file cannot be decrypted: its key is not configured, or it was altered."""


@dataclass(frozen=True)
class MediaKey:
    key_id: str
    secret: bytes


def parse_media_keys(raw: list[str]) -> list[MediaKey]:
    """``["id:base64-of-32-bytes", ...]`` → keys; raises ``ImproperlyConfigured`` naming the bad entry."""
    keys: list[MediaKey] = []
    for position, entry in enumerate(raw, start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id or len(key_id.encode()) > 64:
            raise ImproperlyConfigured(
                f"TAKEDOWN_MEDIA_KEYS entry {position} must look like 'key-id:base64-key' (a key id of 1-64 bytes).")
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(
                f"TAKEDOWN_MEDIA_KEYS entry {position} ({key_id}): the key is not base64.") from exc
        if len(secret) != 32:
            raise ImproperlyConfigured(
                f"TAKEDOWN_MEDIA_KEYS entry {position} ({key_id}): the key must be 32 bytes (AES-256); got "
                f"{len(secret)}. Make one with: python -c \"import os,base64;print(base64.b64encode(os.urandom(32)))\"")
        if any(k.key_id == key_id for k in keys):
            raise ImproperlyConfigured(f"TAKEDOWN_MEDIA_KEYS lists the key id {key_id!r} twice.")
        keys.append(MediaKey(key_id=key_id, secret=secret))
    return keys


def _keys() -> list[MediaKey]:
    return parse_media_keys(list(getattr(settings, "TAKEDOWN_MEDIA_KEYS", [])))


def current_key_id() -> str | None:
    keys = _keys()
    return keys[0].key_id if keys else None


def is_encrypted(blob: bytes) -> bool:
    return blob.startswith(MAGIC)


def key_id_of(blob: bytes) -> str | None:
    """The key id a stored file was encrypted under; None for a plaintext file."""
    if not is_encrypted(blob) or len(blob) < len(MAGIC) + 1:
        return None
    length = blob[len(MAGIC)]
    return blob[len(MAGIC) + 1:len(MAGIC) + 1 + length].decode(errors="replace")


def encrypt_media(data: bytes) -> bytes:
    """The bytes to store for ``data``: encrypted under the current key, or ``data`` itself when no key is set."""
    keys = _keys()
    if not keys:
        return data
    key = keys[0]
    key_id = key.key_id.encode()
    header = MAGIC + bytes([len(key_id)]) + key_id
    nonce = os.urandom(_NONCE_BYTES)
    return header + nonce + AESGCM(key.secret).encrypt(nonce, data, header)


def decrypt_media(blob: bytes) -> bytes:
    """The original bytes of a stored file (plaintext files are returned as they are)."""
    if not is_encrypted(blob):
        return blob
    key_id = key_id_of(blob)
    header_end = len(MAGIC) + 1 + blob[len(MAGIC)]
    header, nonce = blob[:header_end], blob[header_end:header_end + _NONCE_BYTES]
    key = next((k for k in _keys() if k.key_id == key_id), None)
    if key is None:
        raise MediaDecryptError(f"Stored media is encrypted under key {key_id!r}, which TAKEDOWN_MEDIA_KEYS "
                                "does not list. Add that key back (after the current one).")
    try:
        return AESGCM(key.secret).decrypt(nonce, blob[header_end + _NONCE_BYTES:], header)
    except InvalidTag as exc:
        raise MediaDecryptError(f"Stored media under key {key_id!r} fails its integrity check: "
                                "the file was altered or the key is wrong.") from exc
