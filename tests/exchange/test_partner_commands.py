"""manage.py partner / exchange_key / sync_partners: keys printed once, stored hashed, rotated and audited."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from exchange.models import KeyScope, PartnerPolicy, Remote
from exchange.signing import public_key_b64
from hashing.banks import bank_get_or_create
from moderation.models import ApiKey, AuditEvent, Partner
from moderation.security.secrets import hash_api_key
from tests.conftest import AS_ADMIN


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_user")
def test_an_operator_adds_a_partner_gives_it_a_scoped_key_and_rotates_it() -> None:
    bank_get_or_create(name="confirmed-takedowns")
    public = public_key_b64(Ed25519PrivateKey.generate().public_key())
    run("partner", "add", *AS_ADMIN, "northwind", "--organisation", "Northwind Social", "--trust", "high",
        "--auto-action", "block_on_match", "--allow-bank", "confirmed-takedowns", "--public-key", public)
    partner = Partner.objects.get(name="northwind")
    assert PartnerPolicy.objects.get(partner=partner).public_keys == [public]
    key = run("partner", "key", *AS_ADMIN, "northwind", "--read", "confirmed-takedowns",
              "--feedback").strip().splitlines()[-1]
    row = ApiKey.objects.get(partner=partner)
    assert row.key_hash == hash_api_key(key) and key not in str(ApiKey.objects.values_list())
    scope = KeyScope.objects.get(api_key=row)
    assert [b.name for b in scope.read_banks.all()] == ["confirmed-takedowns"] and scope.feedback
    client = APIClient()
    assert client.get("/api/v1/exchange/hashes", HTTP_AUTHORIZATION=f"Api-Key {key}").status_code == 200
    new_key = run("partner", "rotate", *AS_ADMIN, row.prefix).strip().splitlines()[-1]
    assert client.get("/api/v1/exchange/hashes", HTTP_AUTHORIZATION=f"Api-Key {key}").status_code == 401
    assert client.get("/api/v1/exchange/hashes", HTTP_AUTHORIZATION=f"Api-Key {new_key}").status_code == 200
    assert AuditEvent.objects.filter(action="api_key.rotated", object_id=str(row.pk)).exists()
    listing = run("partner", "list")
    assert "northwind" in listing and "revoked" in listing and key not in listing and new_key not in listing


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_user")
def test_a_key_cannot_read_a_bank_the_partner_is_not_allowed() -> None:
    bank_get_or_create(name="confirmed-takedowns")
    bank_get_or_create(name="internal-only")
    run("partner", "add", *AS_ADMIN, "northwind", "--organisation", "Northwind Social", "--allow-bank",
        "confirmed-takedowns")
    with pytest.raises(CommandError, match="internal-only"):
        run("partner", "key", *AS_ADMIN, "northwind", "--read", "internal-only")
    with pytest.raises(CommandError, match="public_keys"):
        run("partner", "policy", *AS_ADMIN, "northwind", "--public-key", "not-base64!")


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_user")
def test_a_remote_is_configured_from_a_key_file_and_the_key_is_never_printed(tmp_path: Path) -> None:
    run("partner", "add", *AS_ADMIN, "upstream", "--organisation", "Upstream", "--auto-action", "queue_for_review")
    key_file = tmp_path / "key"
    key_file.write_text("td_abcd1234_secret-remote-key\n")
    public = public_key_b64(Ed25519PrivateKey.generate().public_key())
    out = run("partner", "remote", *AS_ADMIN, "upstream", "--url", "http://127.0.0.1:9/", "--bank", "from-upstream",
              "--public-key", public, "--api-key-file", str(key_file))
    remote = Remote.objects.get(partner__name="upstream")
    assert (remote.base_url, remote.api_key, remote.bank.name) == ("http://127.0.0.1:9", key_file.read_text().strip(),
                                                                  "from-upstream")
    assert not remote.bank.blocks_uploads  # queue_for_review: matches go to a reviewer, not blocked
    assert "secret-remote-key" not in out + run("partner", "list")
    # Nothing listens on port 9: the sync fails with a readable error, and says which remote.
    err = io.StringIO()
    with pytest.raises(CommandError, match="upstream"):
        call_command("sync_partners", stdout=io.StringIO(), stderr=err)
    assert "cannot reach" in err.getvalue() and "secret-remote-key" not in err.getvalue()


@pytest.mark.django_db
def test_sync_partners_without_remotes_says_how_to_add_one() -> None:
    assert "partner remote" in run("sync_partners")


@pytest.mark.django_db
def test_exchange_key_generates_once_and_shows_the_public_key(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "key.pem"
    with override_settings(TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE=str(path)):
        first = run("exchange_key", "generate")
        assert path.stat().st_mode & 0o777 == 0o600
        again = run("exchange_key", "generate")
        assert "kept" in again and first.strip().splitlines()[-1] == again.strip().splitlines()[-1]
        assert "PRIVATE" not in first + again


def test_celery_beat_runs_the_partner_sync_task() -> None:
    from django.conf import settings

    from moderation.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["exchange-sync"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
