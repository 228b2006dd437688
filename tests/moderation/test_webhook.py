"""The webhook Enforcer against a receiver on loopback that verifies Standard Webhooks signatures the way a
platform would: with the ``standardwebhooks`` library and the shared secret.

One retry mechanism (issue 17): the enforcer makes one attempt per call and the Celery task repeats it. Celery
runs eagerly in tests, so the task's retries run inline, one after another, without their countdowns; the
receiver counts the POSTs one takedown costs."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from standardwebhooks import Webhook, WebhookVerificationError

from moderation.models import Action, AuditEvent, DemoContentItem, Report, WebhookDelivery
from moderation.platforms import ContentNotFound, PlatformError, PlatformRefused, get_enforcer
from moderation.platforms.webhook import WebhookEnforcer
from moderation.services.webhooks import delivery_replay
from moderation.tasks import carry_out_action
from tests.moderation.legal_helpers import Received, Receiver, loopback_server, submit, take_down, webhook_verified

SECRET = "whsec_" + base64.b64encode(b"test-webhook-secret-0123456789abcdef").decode()


def checked(received: Received) -> bool:
    return webhook_verified(received, SECRET)


def enforcer(url: str) -> WebhookEnforcer:
    return WebhookEnforcer(url=url, secret=SECRET, timeout=5)


@pytest.fixture
def webhook_settings(settings: Any) -> Any:
    settings.TAKEDOWN_ENFORCER = "webhook"
    settings.TAKEDOWN_WEBHOOK_SECRET = SECRET
    return settings


def test_the_signature_is_the_standard_webhooks_hmac_over_id_timestamp_and_body() -> None:
    import hashlib
    import hmac

    hook = enforcer("http://127.0.0.1:9/")
    at = datetime.fromtimestamp(1_700_000_000, UTC)
    headers = hook.headers(message_id="decision-1-item-1-remove", body=b'{"a":1}', at=at)
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, b'decision-1-item-1-remove.1700000000.{"a":1}', hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert headers["webhook-id"] == headers["Idempotency-Key"] == "decision-1-item-1-remove"
    assert headers["webhook-timestamp"] == "1700000000"
    # A platform's library refuses a changed body, another secret, and an old timestamp.
    fresh = hook.headers(message_id="m-1", body=b'{"a":1}')
    Webhook(SECRET).verify(b'{"a":1}', fresh)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"a":2}', fresh)
    with pytest.raises(WebhookVerificationError):
        Webhook(base64.b64encode(b"another-secret-of-enough-bytes!!").decode()).verify(b'{"a":1}', fresh)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(b'{"a":1}', hook.headers(message_id="m-1", body=b'{"a":1}',
                                                         at=datetime.fromtimestamp(time.time() - 3600, UTC)))


@pytest.mark.parametrize("secret, problem", [
    ("a-plain-shared-secret-of-forty-characters", "must be a Standard Webhooks secret"),
    ("whsec_not base64!", "not valid base64"),
    ("whsec_" + base64.b64encode(b"short").decode(), "holds 5 bytes"),
])
def test_a_secret_that_is_not_a_standard_webhooks_secret_is_refused_with_how_to_make_one(
        secret: str, problem: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=problem) as refused:
        WebhookEnforcer(url="http://127.0.0.1:9/", secret=secret, timeout=5)
    assert "secrets.token_bytes(32)" in str(refused.value)
    assert secret not in str(refused.value)


@pytest.mark.django_db
def test_a_removal_is_posted_as_signed_json_with_the_idempotency_key() -> None:
    with loopback_server(lambda r, n: (200 if checked(r) else 401, {})) as receiver:
        enforcer(receiver.url + "/hooks/takedown").remove(
            location="https://host.example/p/1", reason="Non-consensual intimate imagery",
            idempotency_key="decision-1-item-1-remove", statement={"puid": "takedown-d1-i1"})
    [request] = receiver.requests
    assert request.path == "/hooks/takedown"
    assert checked(request)
    assert request.headers["idempotency-key"] == request.headers["webhook-id"] == "decision-1-item-1-remove"
    assert "x-takedown-signature" not in request.headers  # that name is the exchange's Ed25519 signature only
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
def test_one_call_makes_one_attempt_and_a_server_error_is_left_to_the_task_to_retry() -> None:
    with loopback_server(lambda r, n: (503, {}) if n < 2 else (200, {})) as receiver:
        hook = enforcer(receiver.url)
        for _ in range(2):
            with pytest.raises(PlatformError, match="HTTP 503"):
                hook.remove(location="x", reason="r", idempotency_key="k-2")
            assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING  # not a dead letter yet
        hook.remove(location="x", reason="r", idempotency_key="k-2")
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {"k-2"}  # every retry carries the same id
    assert {r.headers["idempotency-key"] for r in receiver.requests} == {"k-2"}
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 3


@pytest.mark.django_db
def test_an_unreachable_platform_is_worth_retrying() -> None:
    with loopback_server(lambda r, n: (200, {})) as receiver:
        url = receiver.url
    with pytest.raises(PlatformError):
        enforcer(url).remove(location="x", reason="r", idempotency_key="k-3")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert "could not reach the platform" in delivery.last_error


@pytest.mark.django_db
def test_a_refusal_is_final_and_a_gone_answer_means_content_not_found() -> None:
    with loopback_server(lambda r, n: (400, {"detail": "no such post"})) as receiver:
        with pytest.raises(PlatformRefused, match="HTTP 400") as refused:
            enforcer(receiver.url).remove(location="x", reason="r", idempotency_key="k-4")
    assert not isinstance(refused.value, PlatformError)  # the task does not retry it
    assert len(receiver.requests) == 1
    assert "no such post" in WebhookDelivery.objects.get(idempotency_key="k-4").last_error
    with loopback_server(lambda r, n: (410, {})) as receiver, pytest.raises(ContentNotFound):
        enforcer(receiver.url).remove(location="x", reason="r", idempotency_key="k-5")
    assert WebhookDelivery.objects.get(idempotency_key="k-5").status == WebhookDelivery.Status.DELIVERED


@pytest.mark.django_db
def test_the_enforcer_refuses_to_start_without_a_secret(settings: Any) -> None:
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


# --- One retry mechanism: the task's ---------------------------------------------------------------------


def dead_letter_events() -> int:
    return AuditEvent.objects.filter(action="webhook.dead").count()


def take_down_through(answer: Any, webhook_settings: Any, moderator: User) -> tuple[Receiver, Report]:
    """A takedown carried out through a receiver that answers with ``answer``; the receiver, once closed."""
    with loopback_server(answer) as receiver:
        webhook_settings.TAKEDOWN_WEBHOOK_URL = receiver.url
        report = submit(locations=["demo://content/9"]).report
        take_down(report, moderator)
    return receiver, report


@pytest.mark.django_db(transaction=True)
def test_a_receiver_answering_500_gets_one_post_per_task_attempt_then_exactly_one_dead_letter(
        demo: Any, moderator: User, webhook_settings: Any) -> None:
    receiver, report = take_down_through(lambda r, n: (500, {"detail": "down"}), webhook_settings, moderator)

    assert carry_out_action.max_retries == 8
    assert len(receiver.requests) == carry_out_action.max_retries + 1  # no retries inside an attempt
    action = Action.objects.get(decision__report=report)
    assert action.status == Action.Status.FAILED
    assert {r.headers["webhook-id"] for r in receiver.requests} == {action.idempotency_key}
    [dead] = WebhookDelivery.objects.all()
    assert dead.status == WebhookDelivery.Status.DEAD and dead.action_id == action.pk
    assert dead.attempts == carry_out_action.max_retries + 1
    assert "HTTP 500" in dead.last_error
    assert dead_letter_events() == 1
    assert Report.objects.get(pk=report.pk).status == Report.Status.ACTIONING


@pytest.mark.django_db(transaction=True)
def test_a_receiver_refusing_with_400_gets_one_post_and_the_action_fails_at_once(
        demo: Any, moderator: User, webhook_settings: Any) -> None:
    receiver, report = take_down_through(lambda r, n: (400, {"detail": "unknown location"}), webhook_settings,
                                         moderator)

    assert len(receiver.requests) == 1
    action = Action.objects.get(decision__report=report)
    assert action.status == Action.Status.FAILED and "400" in action.last_error
    dead = WebhookDelivery.objects.get()
    assert dead.status == WebhookDelivery.Status.DEAD and dead.attempts == 1
    assert "unknown location" in dead.last_error  # the platform's reason, for the admin
    assert dead_letter_events() == 1


@pytest.mark.django_db(transaction=True)
def test_a_429_is_retried_by_the_task_like_a_server_error(
        demo: Any, moderator: User, webhook_settings: Any) -> None:
    receiver, report = take_down_through(lambda r, n: (429, {}) if n < 2 else (200, {}), webhook_settings,
                                         moderator)

    assert len(receiver.requests) == 3
    assert Action.objects.get(decision__report=report).status == Action.Status.DONE
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 3
    assert dead_letter_events() == 0


@pytest.mark.django_db(transaction=True)
def test_a_replayed_dead_letter_that_fails_again_is_one_more_dead_letter_not_a_pile(
        demo: Any, moderator: User, webhook_settings: Any) -> None:
    answers = {"status": 400}

    def answer(received: Received, n: int) -> tuple[int, dict[str, Any]]:
        return answers["status"], {}

    with loopback_server(answer) as receiver:
        webhook_settings.TAKEDOWN_WEBHOOK_URL = receiver.url
        report = submit(locations=["demo://content/9"]).report
        take_down(report, moderator)
        dead = WebhookDelivery.objects.get()
        delivery_replay(delivery_id=dead.pk)  # still refused
        assert dead_letter_events() == 2 and len(receiver.requests) == 2
        answers["status"] = 200
        delivery_replay(delivery_id=dead.pk)

    dead.refresh_from_db()
    assert dead.status == WebhookDelivery.Status.DELIVERED
    assert len(receiver.requests) == 3 and dead_letter_events() == 2
    assert Action.objects.get(decision__report=report).status == Action.Status.DONE


def test_the_system_check_names_a_webhook_secret_that_cannot_work(settings: Any) -> None:
    from django.core.checks import run_checks

    settings.TAKEDOWN_ENFORCER = "webhook"
    settings.TAKEDOWN_WEBHOOK_URL = "https://platform.example/hooks"
    settings.TAKEDOWN_WEBHOOK_SECRET = "a-plain-shared-secret-of-forty-characters"
    [error] = [m for m in run_checks() if m.id == "takedown.E101"]
    assert "whsec_" in error.msg and settings.TAKEDOWN_WEBHOOK_SECRET not in error.msg
    settings.TAKEDOWN_WEBHOOK_SECRET = SECRET
    assert not [m for m in run_checks() if m.id == "takedown.E101"]
