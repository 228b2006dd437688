"""Fixtures of the exchange tests: this instance's signing key, a partner with its own key pair, keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.test import override_settings
from rest_framework.test import APIClient

from exchange.partners import partner_create, partner_key_create
from exchange.signing import generate_private_key_pem, public_key_b64, sign
from hashing.banks import bank_get_or_create
from hashing.models import Bank
from moderation.models import Partner


@pytest.fixture(autouse=True)
def instance_signing_key(tmp_path: Path) -> Iterator[Path]:
    """A fresh Ed25519 key for this instance, as the settings path names it."""
    path = tmp_path / "exchange_signing_key.pem"
    path.write_bytes(generate_private_key_pem())
    with override_settings(TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE=str(path)):
        yield path


@dataclass
class PartnerSetup:
    partner: Partner
    key: str
    private_key: Ed25519PrivateKey
    confirmed: Bank

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {self.key}")
        return client

    def post_signed(self, path: str, payload: Any, *, key: Ed25519PrivateKey | None = None,
                    tamper: bool = False) -> Any:
        body = json.dumps(payload).encode()
        signature = sign(body, key or self.private_key)
        if tamper:
            body = body.replace(b'"', b' "', 1)
        return self.client().post(path, body, content_type="application/json", HTTP_X_TAKEDOWN_SIGNATURE=signature)


@pytest.fixture
def partner(db: Any) -> PartnerSetup:
    """Partner "northwind" may read the confirmed bank, push into its own bank and send feedback."""
    confirmed = bank_get_or_create(name="confirmed-takedowns")
    private = Ed25519PrivateKey.generate()
    partner = partner_create(name="northwind", organisation="Northwind Social", trust_level="high",
                             auto_action="block_on_match", allowed_banks=[confirmed],
                             public_keys=[public_key_b64(private.public_key())])
    _row, key = partner_key_create(partner=partner, read_banks=[confirmed], write=True, feedback=True)
    return PartnerSetup(partner=partner, key=key, private_key=private, confirmed=confirmed)
