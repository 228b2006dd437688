"""Each process trusts a valid API key for ``TAKEDOWN_API_KEY_CACHE_SECONDS`` (1 s) without a database lookup.

What that may cost is bounded: a key revoked by another process (here: straight in the database) is refused
once that time has passed, and at once by the process that revoked it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from exchange.partners import partner_key_rotate
from moderation.models import ApiKey
from moderation.services import api_keys
from tests.exchange.conftest import PartnerSetup, partner  # noqa: F401 - partner: the fixture

SCAN_RESULT = "/api/v1/scan/no-such-scan"  # 404 for a valid platform key, 401 for any other
FEED = "/api/v1/exchange/hashes"


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def move_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    later = api_keys._clock() + seconds
    monkeypatch.setattr(api_keys, "_clock", lambda: later)


@pytest.mark.django_db
def test_a_key_used_a_moment_ago_is_not_looked_up_again(platform_key: str) -> None:
    client = client_with(platform_key)
    assert client.get(SCAN_RESULT).status_code == 404
    with CaptureQueriesContext(connection) as queries:
        assert client.get(SCAN_RESULT).status_code == 404
    assert not [q for q in queries.captured_queries if "moderation_apikey" in q["sql"]]


@pytest.mark.django_db
def test_a_key_revoked_by_another_process_is_refused_once_the_cache_time_has_passed(
        platform_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_with(platform_key)
    assert client.get(SCAN_RESULT).status_code == 404
    ApiKey.objects.filter(kind="platform").update(revoked_at=timezone.now())  # as another process would
    move_clock(monkeypatch, settings.TAKEDOWN_API_KEY_CACHE_SECONDS)
    assert client.get(SCAN_RESULT).status_code == 401


@pytest.mark.django_db
def test_with_the_cache_off_a_revoked_key_is_refused_on_the_next_request(platform_key: str) -> None:
    client = client_with(platform_key)
    with override_settings(TAKEDOWN_API_KEY_CACHE_SECONDS=0):
        assert client.get(SCAN_RESULT).status_code == 404
        ApiKey.objects.filter(kind="platform").update(revoked_at=timezone.now())
        assert client.get(SCAN_RESULT).status_code == 401


@pytest.mark.django_db
def test_a_rotated_partner_key_is_refused_at_once_by_the_process_that_rotated_it(partner: PartnerSetup) -> None:  # noqa: F811
    old = client_with(partner.key)
    assert old.get(FEED).status_code == 200
    row = ApiKey.objects.get(kind="partner", revoked_at=None)
    _new_row, new_key = partner_key_rotate(api_key=row)
    assert old.get(FEED).status_code == 401
    assert client_with(new_key).get(FEED).status_code == 200


@pytest.mark.django_db
def test_an_unknown_key_is_looked_up_every_time(platform_key: str) -> None:
    client = client_with("td_00000000_not-a-key")
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(SCAN_RESULT).status_code == 401
        assert [q for q in queries.captured_queries if "moderation_apikey" in q["sql"]]


def test_the_cache_keeps_a_bounded_number_of_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = api_keys._KeyCache()
    rows: list[Any] = [ApiKey(pk=i) for i in range(api_keys._KeyCache._MAX + 5)]
    for i, row in enumerate(rows):
        cache.put(f"digest-{i}", "platform", row)
    assert len(cache._rows) <= api_keys._KeyCache._MAX
    assert cache.get(f"digest-{len(rows) - 1}", "platform", ttl=60) is rows[-1]
