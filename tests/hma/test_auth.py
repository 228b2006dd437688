"""Who may call the HMA routes: platform keys; anonymous callers only from allowed networks; curation only with
the curation scope."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from moderation.models import ApiKey
from moderation.services.api_keys import api_key_create, api_key_revoke
from tests.conftest import AS_ADMIN
from tests.hma.conftest import Hma

pytestmark = pytest.mark.django_db

LOOKUP = ("/hma/m/raw_lookup", {"signal": "0" * 64, "signal_type": "pdq"})
PLATFORM_ROUTES = [("get", "/hma/m/raw_lookup"), ("get", "/hma/m/lookup"), ("post", "/hma/m/lookup"),
                   ("get", "/hma/h/hash"), ("post", "/hma/h/hash"), ("post", "/hma/m/compare"),
                   ("get", "/hma/m/index/status")]
CURATION_ROUTES = [("get", "/hma/c/banks"), ("post", "/hma/c/banks"), ("get", "/hma/c/bank/ANY"),
                   ("put", "/hma/c/bank/ANY"), ("delete", "/hma/c/bank/ANY"), ("post", "/hma/c/bank/ANY/content"),
                   ("post", "/hma/c/bank/ANY/signal"), ("get", "/hma/c/bank/ANY/content/1"),
                   ("put", "/hma/c/bank/ANY/content/1"), ("delete", "/hma/c/bank/ANY/content/1"),
                   ("get", "/hma/c/signal_type"), ("get", "/hma/c/content_type"), ("get", "/hma/c/exchanges")]
ALLOWED, ELSEWHERE, PROXY = "10.20.30.40", "203.0.113.5", "192.0.2.1"


def call(method: str, path: str, **extra: Any) -> Any:
    return getattr(Client(), method)(path, **extra)


@pytest.mark.parametrize(("method", "path"), PLATFORM_ROUTES + CURATION_ROUTES)
def test_an_anonymous_caller_is_refused_with_a_challenge(method: str, path: str) -> None:
    response = call(method, path)
    assert response.status_code == 401
    assert "Api-Key" in response["WWW-Authenticate"] and "Bearer" in response["WWW-Authenticate"]
    assert "key" in response.json()["message"]


def test_an_anonymous_caller_from_an_allowed_network_may_match_but_not_curate(settings: Any) -> None:
    settings.TAKEDOWN_HMA_ALLOW_NETWORKS = ["10.0.0.0/8"]
    assert call("get", LOOKUP[0], data=LOOKUP[1], REMOTE_ADDR=ALLOWED).status_code == 200
    assert call("get", LOOKUP[0], data=LOOKUP[1], REMOTE_ADDR=ELSEWHERE).status_code == 401
    assert call("get", "/hma/c/banks", REMOTE_ADDR=ALLOWED).status_code == 401


def test_the_allow_list_reads_forwarded_addresses_only_through_trusted_proxies(settings: Any) -> None:
    settings.TAKEDOWN_HMA_ALLOW_NETWORKS = ["10.0.0.0/8"]
    settings.TAKEDOWN_TRUSTED_PROXIES = []
    forged = call("get", LOOKUP[0], data=LOOKUP[1], REMOTE_ADDR=ELSEWHERE, HTTP_X_FORWARDED_FOR=ALLOWED)
    assert forged.status_code == 401
    settings.TAKEDOWN_TRUSTED_PROXIES = [PROXY]
    proxied = call("get", LOOKUP[0], data=LOOKUP[1], REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=ALLOWED)
    assert proxied.status_code == 200


def test_a_bad_key_is_refused_even_from_an_allowed_network(settings: Any) -> None:
    settings.TAKEDOWN_HMA_ALLOW_NETWORKS = ["10.0.0.0/8"]
    for header in ("Bearer td_not_a_key", "Api-Key td_not_a_key", "Basic dXNlcjpwdw==", "Bearer "):
        response = call("get", LOOKUP[0], data=LOOKUP[1], REMOTE_ADDR=ALLOWED, HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header


def test_a_platform_key_is_accepted_as_api_key_or_bearer(platform_key: str) -> None:
    for scheme in ("Api-Key", "Bearer", "bearer"):
        response = call("get", LOOKUP[0], data=LOOKUP[1], HTTP_AUTHORIZATION=f"{scheme} {platform_key}")
        assert response.status_code == 200, scheme


def test_a_revoked_key_is_refused(platform_key: str) -> None:
    assert call("get", LOOKUP[0], data=LOOKUP[1], HTTP_AUTHORIZATION=f"Bearer {platform_key}").status_code == 200
    api_key_revoke(prefix=platform_key.split("_")[1])
    assert call("get", LOOKUP[0], data=LOOKUP[1], HTTP_AUTHORIZATION=f"Bearer {platform_key}").status_code == 401


def test_partner_and_flagger_keys_are_not_platform_keys() -> None:
    for kind, extra in (("partner", {}), ("flagger", {"source": "trusted_flagger"})):
        _row, key = api_key_create(kind=kind, name=f"a {kind}", **extra)
        assert call("get", LOOKUP[0], data=LOOKUP[1], HTTP_AUTHORIZATION=f"Api-Key {key}").status_code == 401


@pytest.mark.parametrize(("method", "path"), CURATION_ROUTES)
def test_a_platform_key_without_the_curation_scope_cannot_curate(method: str, path: str, platform_key: str) -> None:
    response = call(method, path, HTTP_AUTHORIZATION=f"Api-Key {platform_key}")
    assert response.status_code == 403
    assert "--curation" in response.json()["message"]


def test_a_curation_key_curates_and_also_matches(curator: Hma) -> None:
    assert curator.post("/c/banks", {"name": "CURATED"}).status_code == 201
    assert curator.get("/m/raw_lookup", LOOKUP[1]).status_code == 200


def test_the_status_routes_are_open_as_health_checks_are() -> None:
    assert call("get", "/hma/status/live").content == b"I-AM-ALIVE"
    assert call("get", "/hma/status").status_code in (200, 503)


def test_create_api_key_makes_a_curation_key_only_for_platforms(admin_user: Any, capsys: Any) -> None:
    call_command("create_api_key", "--kind", "platform", "--name", "hma curator", "--curation", *AS_ADMIN)
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert ApiKey.objects.get(name="hma curator").curation is True
    assert Client().get("/hma/c/banks", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Only platform keys"):
        call_command("create_api_key", "--kind", "partner", "--name", "p", "--curation", *AS_ADMIN)
