"""Ed25519 signatures over the exact bytes of exchange pages and batches.

The header is ``X-Takedown-Signature: keyid=<16 hex>,sig=<base64 signature>``. The key id is the first
16 hex digits of the SHA-256 of the raw public key, so a receiver can say which pinned key was meant. A
receiver never takes a key from the message: it verifies against the keys it pinned for that sender.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SIGNATURE_HEADER = "X-Takedown-Signature"
# Django's request.META name of the header.
SIGNATURE_META = "HTTP_X_TAKEDOWN_SIGNATURE"


class BadPublicKey(ValueError):
    """A public key that is not base64 of 32 raw Ed25519 bytes."""


def generate_private_key_pem() -> bytes:
    """A new Ed25519 private key as unencrypted PKCS#8 PEM (what ``TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE`` holds)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@lru_cache(maxsize=4)
def _load_private_key(path: str) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(
            f"The exchange signing key file {path} cannot be read ({exc.strerror}). Create one with "
            "'manage.py exchange_key generate' or set TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE.") from exc
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"The exchange signing key file {path} does not hold an Ed25519 private key.")
    return key


def instance_private_key() -> Ed25519PrivateKey:
    path = getattr(settings, "TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE", "")
    if not path:
        raise ImproperlyConfigured("TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE is not set: the exchange cannot sign.")
    return _load_private_key(str(path))


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def instance_public_key_b64() -> str:
    """This instance's public key, base64 of the 32 raw bytes: what partners pin."""
    return public_key_b64(instance_private_key().public_key())


def key_id(public_key_b64_value: str) -> str:
    return hashlib.sha256(_raw_public(public_key_b64_value)).hexdigest()[:16]


def _raw_public(value: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadPublicKey("a public key is base64 of 32 raw Ed25519 bytes") from exc
    if len(raw) != 32:
        raise BadPublicKey("a public key is base64 of 32 raw Ed25519 bytes")
    return raw


def check_public_key(value: str) -> str:
    """``value`` stripped, or :class:`BadPublicKey`."""
    _raw_public(value)
    return value.strip()


def sign(body: bytes, private_key: Ed25519PrivateKey | None = None) -> str:
    """The signature header value for ``body``, signed with ``private_key`` (default: this instance's)."""
    key = private_key or instance_private_key()
    signature = key.sign(body)
    kid = key_id(public_key_b64(key.public_key()))
    return f"keyid={kid},sig={base64.b64encode(signature).decode()}"


def verify(body: bytes, header: str | None, public_keys: Iterable[str]) -> bool:
    """True when ``header`` holds a valid signature of ``body`` by one of the pinned ``public_keys``."""
    if not header:
        return False
    parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    try:
        signature = base64.b64decode(parts.get("sig", ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    for value in public_keys:
        try:
            raw = _raw_public(value)
        except BadPublicKey:
            continue
        if "keyid" in parts and parts["keyid"] != hashlib.sha256(raw).hexdigest()[:16]:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(signature, body)
        except InvalidSignature:
            continue
        return True
    return False
