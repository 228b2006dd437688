"""Fault: the platform's webhook receiver is down (nothing listens: connection refused), then comes back."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from django.contrib.auth.models import User

from moderation.models import Action, AuditEvent, Report, WebhookDelivery
from moderation.platforms import PlatformError
from moderation.platforms.webhook import WebhookEnforcer, delivery_dead
from moderation.services.webhooks import delivery_replay
from tests.faults.services import free_port, port_open
from tests.moderation.legal_helpers import Received, serving, submit, take_down, webhook_verified

SECRET = "whsec_" + base64.b64encode(b"fault-test-webhook-secret-0123456789").decode()


@contextmanager
def receiver_on(port: int) -> Iterator[list[Received]]:
    """The platform's receiver coming back on the port that was refusing: 200 for a signed POST, else 401."""
    requests: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            requests.append(received)
            self.send_response(200 if signed(received) else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler, port=port):
        yield requests


def signed(received: Received) -> bool:
    return webhook_verified(received, SECRET)


@pytest.mark.django_db
def test_a_receiver_that_is_down_gets_one_attempt_per_call_then_a_dead_letter_that_replays_once_it_is_up(
        settings: Any) -> None:
    port = free_port()
    settings.TAKEDOWN_WEBHOOK_URL = f"http://127.0.0.1:{port}/hooks"  # a replay sends with the settings
    settings.TAKEDOWN_WEBHOOK_SECRET = SECRET
    assert not port_open(port)  # nothing listens there: every attempt is refused
    hook = WebhookEnforcer(url=f"http://127.0.0.1:{port}/hooks", secret=SECRET, timeout=2)
    for attempt in (1, 2):  # what the task's retries do: call again, later
        with pytest.raises(PlatformError, match=f"attempt {attempt}"):
            hook.remove(location="https://host.example/p/7", reason="ncii", idempotency_key="fault-k-1")
    delivery = WebhookDelivery.objects.get(idempotency_key="fault-k-1")
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 2
    assert "could not reach the platform" in delivery.last_error
    assert delivery_dead(delivery)  # retries exhausted: the task's failure handler makes it a dead letter
    assert not delivery_dead(delivery)  # once
    dead = WebhookDelivery.objects.get(idempotency_key="fault-k-1")
    assert dead.status == WebhookDelivery.Status.DEAD
    assert AuditEvent.objects.filter(action="webhook.dead").count() == 1

    with receiver_on(port) as received:
        replayed = delivery_replay(delivery_id=dead.pk)
    assert replayed.status == WebhookDelivery.Status.DELIVERED
    [request] = received
    assert signed(request) and request.headers["idempotency-key"] == "fault-k-1"
    assert request.json()["location"] == "https://host.example/p/7"


@pytest.mark.django_db(transaction=True)
def test_a_takedown_while_the_receiver_is_down_fails_visibly_and_completes_on_replay(
        demo: Any, moderator: User, settings: Any) -> None:
    port = free_port()
    settings.TAKEDOWN_ENFORCER = "webhook"
    settings.TAKEDOWN_WEBHOOK_SECRET = SECRET
    settings.TAKEDOWN_WEBHOOK_URL = f"http://127.0.0.1:{port}/hooks"
    report = submit(locations=["demo://content/5"]).report
    take_down(report, moderator)
    action = Action.objects.get(decision__report=report)
    assert action.status == Action.Status.FAILED  # eager: the task's own retries ran out at once
    dead = WebhookDelivery.objects.get(action=action)
    assert dead.status == WebhookDelivery.Status.DEAD
    assert AuditEvent.objects.filter(action="webhook.dead").count() == 1  # one dead letter, not one per retry
    assert Report.objects.get(pk=report.pk).status == Report.Status.ACTIONING  # not claimed as removed

    with receiver_on(port) as received:
        delivery_replay(delivery_id=dead.pk)
    dead.refresh_from_db()
    action.refresh_from_db()
    assert dead.status == WebhookDelivery.Status.DELIVERED
    assert action.status == Action.Status.DONE
    assert Report.objects.get(pk=report.pk).status == Report.Status.REMOVED
    assert len(received) == 1 and signed(received[0])
