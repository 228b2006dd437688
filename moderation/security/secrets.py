"""Case numbers, PINs and API keys: generation and hashing."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.hashers import PBKDF2PasswordHasher

# No 0/O, 1/I/L: people read these aloud and copy them by hand.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def _groups(length: int, group: int = 4) -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(length))
    return "-".join(raw[i:i + group] for i in range(0, length, group))


def new_case_number() -> str:
    """E.g. ``TD-7KQM-2XPA``: 8 random characters, about 40 bits."""
    return f"TD-{_groups(8)}"


def new_pin() -> str:
    """E.g. ``K7QM-2XPA-9RTB``: 12 random characters, about 59 bits, so guessing is hopeless."""
    return _groups(12)


def normalise_code(value: str) -> str:
    """Upper-case and strip spaces so a PIN or case number typed by hand still matches."""
    return "".join(value.split()).upper()


class PinHasher(PBKDF2PasswordHasher):
    """PBKDF2-SHA256 with far fewer rounds than login passwords, because a PIN is not chosen by a person.

    A PIN is 12 characters drawn at random from 31 (about 59 bits). Someone holding a stolen hash must try
    2^58 PINs on average, each costing ``iterations`` HMAC-SHA256 rounds: at 10^10 rounds a second (one
    fast GPU) that is about 900 GPU-years at 1,000 rounds. The rounds guard a weak secret; this one is
    not weak, and every report pays for them on the person's request (about 1.2 ms at 1,000 rounds, 24 ms
    at 20,000). Hashes stored with other round counts still verify: the count is part of the hash.
    """

    algorithm = "pin_pbkdf2_sha256"
    iterations = 1_000


_PIN_HASHER = PinHasher()


def hash_pin(pin: str) -> str:
    return _PIN_HASHER.encode(normalise_code(pin), _PIN_HASHER.salt())


def check_pin(pin: str, encoded: str) -> bool:
    try:
        return _PIN_HASHER.verify(normalise_code(pin), encoded)
    except (ValueError, AssertionError):
        return False


def dummy_pin_check() -> None:
    """Spend the time of one PIN check, so a missing case answers as slowly as a wrong PIN."""
    _PIN_HASHER.encode("dummy", "dummysalt")


def new_api_key() -> tuple[str, str]:
    """``(prefix, key)``: the key is ``td_<prefix>_<secret>``; only its SHA-256 is stored."""
    prefix = secrets.token_hex(4)
    return prefix, f"td_{prefix}_{secrets.token_urlsafe(32)}"


def hash_api_key(key: str) -> str:
    # A key carries 256 random bits, so a plain SHA-256 is enough and keeps each request cheap.
    return hashlib.sha256(key.encode()).hexdigest()
