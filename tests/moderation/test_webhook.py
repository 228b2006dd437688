"""The webhook Enforcer against a receiver on loopback that checks HMAC-SHA256 signatures."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from moderation.models import Action, DemoContentItem, Report, WebhookDelivery
from moderation.platforms import ContentNotFound, PlatformError, get_enforcer
from moderation.platforms.webhook import WebhookEnforcer, signature, signature_valid
from moderation.services.webhooks import delivery_replay
from tests.moderation.legal_helpers import Received, loopback_server, submit, take_down

SECRET = "test-webhook-secret-0123456789abcdef"


def checked(received: Received) -> bool:
    """What a platform does: recompute the signature over timestamp + body, and check freshness."""
    timestamp = received.headers["x-takedown-timestamp"]
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and signature_valid(SECRET, timestamp, received.body, received.headers["x-takedown-signature"])


def enforcer(url: str, *, attempts: int = 3, sleeps: list[float] | None = None) -> WebhookEnforcer:
    record = sleeps if sleeps is not None else []
    return WebhookEnforcer(url=url, secret=SECRET, timeout=5, attempts=attempts, backoff_ms=500, sleep=record.append)


@pytest.fixture
def webhook_settings(settings: Any) -> Any:
    settings.TAKEDOWN_ENFORCER = "webhook"
    settings.TAKEDOWN_WEBHOOK_SECRET = SECRET
    settings.TAKEDOWN_WEBHOOK_BACKOFF_MS = 0
    settings.TAKEDOWN_WEBHOOK_ATTEMPTS = 2
    return settings


def test_the_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest()
    assert signature(SECRET, "1700000000", b'{"a":1}') == f"sha256={expected}"
    assert not signature_valid(SECRET, "1700000000", b'{"a":2}', f"sha256={expected}")
    assert not signature_valid("another-secret", "1700000000", b'{"a":1}', f"sha256={expected}")


@pytest.mark.django_db
def test_a_removal_is_posted_as_signed_json_with_the_idempotency_key() -> None:
    with loopback_server(lambda r, n: (200 if checked(r) else 401, {})) as receiver:
        enforcer(receiver.url + "/hooks/takedown").remove(
            location="https://host.example/p/1", reason="Non-consensual intimate imagery",
            idempotency_key="decision-1-item-1-remove", statement={"puid": "takedown-d1-i1"})
    [request] = receiver.requests
    assert request.path == "/hooks/takedown"
    assert checked(request)
    assert request.headers["idempotency-key"] == "decision-1-item-1-remove"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["event"] == "content.remove" and body["location"] == "https://host.example/p/1"
    assert body["idempotency_key"] == "decision-1-item-1-remove"
    assert body["statement"] == {"puid": "takedown-d1-i1"}
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.DELIVERED


@pytest.mark.django_db
def test_a_delivered_webhook_is_not_sent_twice_for_the_same_key() -> None:
    with loopback_server(lambda r, n: (200, {})) as receiver:
        hook = enforcer(receiver.url)
        for _ in range(2):
            hook.remove(location="https://host.example/p/1", reason="r", idempotency_key="k-1")
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_failures_are_retried_with_exponential_backoff_then_delivered() -> None:
    sleeps: list[float] = []
    with loopback_server(lambda r, n: (503, {}) if n < 2 else (200, {})) as receiver:
        enforcer(receiver.url, attempts=4, sleeps=sleeps).remove(location="x", reason="r", idempotency_key="k-2")
    assert len(receiver.requests) == 3
    assert sleeps == [0.5, 1.0]  # 500 ms, doubling
    keys = {r.headers["idempotency-key"] for r in receiver.requests}
    assert keys == {"k-2"}  # every retry carries the same key
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 3


@pytest.mark.django_db
def test_a_delivery_that_keeps_failing_becomes_a_dead_letter() -> None:
    with loopback_server(lambda r, n: (500, {})) as receiver, pytest.raises(PlatformError):
        enforcer(receiver.url, attempts=3).remove(location="x", reason="r", idempotency_key="k-3")
    assert len(receiver.requests) == 3
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.DEAD
    assert "HTTP 500" in delivery.last_error


@pytest.mark.django_db
def test_a_refusal_is_not_retried_and_a_gone_answer_means_content_not_found() -> None:
    with loopback_server(lambda r, n: (400, {})) as receiver, pytest.raises(PlatformError):
        enforcer(receiver.url, attempts=3).remove(location="x", reason="r", idempotency_key="k-4")
    assert len(receiver.requests) == 1
    with loopback_server(lambda r, n: (410, {})) as receiver, pytest.raises(ContentNotFound):
        enforcer(receiver.url).remove(location="x", reason="r", idempotency_key="k-5")


@pytest.mark.django_db
def test_the_enforcer_refuses_to_start_without_a_secret(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.TAKEDOWN_ENFORCER = "webhook"
    settings.TAKEDOWN_WEBHOOK_URL = "http://127.0.0.1:9/"
    settings.TAKEDOWN_WEBHOOK_SECRET = ""
    with pytest.raises(ImproperlyConfigured):
        get_enforcer()


@pytest.mark.django_db(transaction=True)
def test_a_takedown_through_the_webhook_carries_the_statement_and_a_dead_letter_can_be_replayed(
        demo: Any, moderator: User, webhook_settings: Any) -> None:
    platform_up = {"up": False}

    def answer(received: Received, n: int) -> tuple[int, dict[str, Any]]:
        if not checked(received):
            return 401, {}
        return (200, {}) if platform_up["up"] else (503, {})

    with loopback_server(answer) as receiver:
        webhook_settings.TAKEDOWN_WEBHOOK_URL = receiver.url
        report = submit(locations=["demo://content/9"]).report
        take_down(report, moderator)
        action = Action.objects.get(decision__report=report)
        assert action.status == Action.Status.FAILED  # eager mode: the task's retries ran out at once
        dead = WebhookDelivery.objects.get(status=WebhookDelivery.Status.DEAD)
        assert dead.action_id == action.pk
        call_command("webhook_deliveries")  # lists the dead letter for an admin
        platform_up["up"] = True
        delivery_replay(delivery_id=dead.pk)
    dead.refresh_from_db()
    action.refresh_from_db()
    assert dead.status == WebhookDelivery.Status.DELIVERED
    assert action.status == Action.Status.DONE
    assert Report.objects.get(pk=report.pk).status == Report.Status.REMOVED
    body = receiver.requests[-1].json()
    assert body["statement"]["puid"].startswith("takedown-d")
    assert body["statement"]["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert all(checked(r) for r in receiver.requests)
    # The webhook, not the demo platform, carried the removal out.
    assert DemoContentItem.objects.get(number=9).status == DemoContentItem.Status.LIVE


@pytest.mark.django_db
def test_the_admin_lists_dead_letters(client: Any) -> None:
    admin = User.objects.create_superuser("root-admin", "root@example.org", "pw-root")
    client.force_login(admin)
    WebhookDelivery.objects.create(idempotency_key="k-9", event="content.remove", url="http://127.0.0.1:9",
                                   status=WebhookDelivery.Status.DEAD, last_error="platform answered HTTP 500")
    page = client.get("/admin/moderation/webhookdelivery/?status__exact=dead")
    assert page.status_code == 200
    assert "platform answered HTTP 500" in page.content.decode()
