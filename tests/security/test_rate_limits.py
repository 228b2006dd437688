"""Per-address rate limits on the public endpoints (report form and API, case lookups) answer 429 with
Retry-After; they are counted in Django's cache and set in TAKEDOWN_RATE_LIMITS."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from moderation.models import Report
from moderation.security.secrets import hash_pin, new_case_number, new_pin
from tests.conftest import notice_payload, redis_flushed_or_skip
from tests.moderation.console_helpers import make_case

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def tight_limits(settings: Any) -> Iterator[None]:
    settings.TAKEDOWN_RATE_LIMITS = {"report": (2, 3600), "lookup": (3, 3600)}
    cache.clear()
    yield
    cache.clear()


def _retry_after(response: Any) -> int:
    return int(response["Retry-After"])


def test_the_report_form_answers_429_after_the_limit_with_retry_after(client: Client) -> None:
    assert client.get("/report/").status_code == 200  # looking at the form does not count
    for _ in range(2):
        assert client.post("/report/", {"reporter_name": "A"}).status_code == 400
    refused = client.post("/report/", {"reporter_name": "A"})
    assert refused.status_code == 429 and 0 < _retry_after(refused) <= 3600
    assert "Too many attempts from this connection" in refused.content.decode()
    assert client.get("/report/").status_code == 200
    other = Client(REMOTE_ADDR="192.0.2.7")  # another address has its own count
    assert other.post("/report/", {"reporter_name": "A"}).status_code == 400


def test_the_report_api_answers_429_after_the_limit_and_stores_nothing_more(client: Client) -> None:
    for _ in range(2):
        assert client.post("/api/v1/reports", notice_payload(), content_type="application/json").status_code == 201
    refused = client.post("/api/v1/reports", notice_payload(), content_type="application/json")
    assert refused.status_code == 429 and 0 < _retry_after(refused) <= 3600 and refused.json()["detail"]
    assert Report.objects.count() == 2


@pytest.fixture
def case() -> tuple[str, str]:
    pin, number = new_pin(), new_case_number()
    Report.objects.filter(pk=make_case().report_id).update(pin_hash=hash_pin(pin), case_number=number)
    return number, pin


def test_case_lookups_are_limited_per_address_even_with_the_right_pin(client: Client, case: tuple[str, str]) -> None:
    number, pin = case
    for _ in range(3):
        assert client.post("/status/", {"case_number": number, "pin": pin}).status_code == 200
    refused = client.post("/status/", {"case_number": number, "pin": pin})
    assert refused.status_code == 429 and _retry_after(refused) > 0


def test_the_status_api_is_limited_per_address(client: Client, case: tuple[str, str]) -> None:
    number, pin = case
    for _ in range(3):
        assert client.get(f"/api/v1/reports/{number}", headers={"X-Case-Pin": pin}).status_code == 200
    refused = client.get(f"/api/v1/reports/{number}", headers={"X-Case-Pin": pin})
    assert refused.status_code == 429 and _retry_after(refused) > 0


def test_the_pin_lockout_still_locks_a_case_after_wrong_pins(client: Client, case: tuple[str, str],
                                                            settings: Any) -> None:
    settings.TAKEDOWN_RATE_LIMITS = {"report": (100, 3600), "lookup": (100, 3600)}
    number, pin = case
    for i in range(settings.TAKEDOWN_PIN_MAX_FAILURES):
        Client(REMOTE_ADDR=f"198.51.100.{i + 1}").post("/status/", {"case_number": number, "pin": "WRONG"})
    assert client.post("/status/", {"case_number": number, "pin": pin}).status_code == 429


# A database number of its own on the machine's Redis (CI starts it), flushed by this test only.
REDIS_CACHE_URL = os.environ.get("TAKEDOWN_TEST_CACHE_URL", "redis://127.0.0.1:6379/13")


def test_with_redis_the_count_is_shared_by_every_web_process(settings: Any, tmp_path: Path) -> None:
    """With REDIS_URL set, the counts live in Redis: a second web process sees the first one's requests."""
    server = redis_flushed_or_skip(REDIS_CACHE_URL)
    try:
        code = ("import django; django.setup()\n"
                "from moderation.security.ratelimit import rate_limit_hit\n"
                "print(rate_limit_hit('report', '203.0.113.50'))")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "moderation.settings", "SECRET_KEY": "k" * 50,
               "TAKEDOWN_VAR_DIR": str(tmp_path), "REDIS_URL": REDIS_CACHE_URL, "TAKEDOWN_RATE_REPORTS_PER_HOUR": "2"}
        answers = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=60) for _ in range(3)]  # three separate processes
        assert all(a.returncode == 0 for a in answers), [a.stderr[-500:] for a in answers]
        first, second, third = (a.stdout.strip() for a in answers)
        assert (first, second) == ("None", "None") and int(third) > 0
        assert any(key.startswith(b":1:ratelimit:report:") for key in server.keys("*"))
        assert not any(b"203.0.113.50" in key for key in server.keys("*"))  # keys hold a digest, not the address
    finally:
        server.flushdb()
