"""Fault: the platform's webhook receiver is down (nothing listens: connection refused), then comes back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import User

from moderation.models import Action, Report, WebhookDelivery
from moderation.platforms import PlatformError
from moderation.platforms.webhook import WebhookEnforcer, signature_valid
from moderation.services.webhooks import delivery_replay
from tests.faults.services import free_port, port_open
from tests.moderation.legal_helpers import Received, submit, take_down

SECRET = "fault-test-webhook-secret-0123456789"


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

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield requests
    finally:
        server.shutdown()
        server.server_close()


def signed(received: Received) -> bool:
    return signature_valid(SECRET, received.headers["x-takedown-timestamp"], received.body,
                           received.headers["x-takedown-signature"])


@pytest.mark.django_db
def test_a_receiver_that_is_down_gets_retries_with_backoff_then_a_dead_letter_that_replays_once_it_is_up(
        settings: Any) -> None:
    port = free_port()
    settings.TAKEDOWN_WEBHOOK_URL = f"http://127.0.0.1:{port}/hooks"  # a replay sends with the settings
    settings.TAKEDOWN_WEBHOOK_SECRET = SECRET
    assert not port_open(port)  # nothing listens there: every attempt is refused
    sleeps: list[float] = []
    hook = WebhookEnforcer(url=f"http://127.0.0.1:{port}/hooks", secret=SECRET, timeout=2, attempts=4,
                           backoff_ms=250, sleep=sleeps.append)
    with pytest.raises(PlatformError, match="after 4 attempts"):
        hook.remove(location="https://host.example/p/7", reason="ncii", idempotency_key="fault-k-1")
    dead = WebhookDelivery.objects.get(idempotency_key="fault-k-1")
    assert dead.status == WebhookDelivery.Status.DEAD and dead.attempts == 4
    assert "could not reach the platform" in dead.last_error
    assert sleeps == [0.25, 0.5, 1.0]  # exponential backoff between the four attempts

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
    settings.TAKEDOWN_WEBHOOK_ATTEMPTS = 3
    settings.TAKEDOWN_WEBHOOK_BACKOFF_MS = 0
    report = submit(locations=["demo://content/5"]).report
    take_down(report, moderator)
    action = Action.objects.get(decision__report=report)
    assert action.status == Action.Status.FAILED  # eager: the task's own retries ran out at once
    dead = WebhookDelivery.objects.get(action=action)
    assert dead.status == WebhookDelivery.Status.DEAD
    assert Report.objects.get(pk=report.pk).status == Report.Status.ACTIONING  # not claimed as removed

    with receiver_on(port) as received:
        delivery_replay(delivery_id=dead.pk)
    dead.refresh_from_db()
    action.refresh_from_db()
    assert dead.status == WebhookDelivery.Status.DELIVERED
    assert action.status == Action.Status.DONE
    assert Report.objects.get(pk=report.pk).status == Report.Status.REMOVED
    assert len(received) == 1 and signed(received[0])
