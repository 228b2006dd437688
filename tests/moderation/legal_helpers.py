"""Helpers shared by the legal-workflow tests (issue 7): reports, decisions, a loopback HTTP receiver, and
the platform's check of a takedown webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.contrib.auth.models import User
from standardwebhooks import Webhook, WebhookVerificationError

from moderation.models import ApiKey, Decision, Report, ReviewTask
from moderation.services.api_keys import api_key_create
from moderation.services.decisions import decision_make
from moderation.services.intake import Notice, SubmittedReport, report_submit
from moderation.services.scan import DETECTION_INLINE, scan_submit
from tests.conftest import notice_payload


def submit(**overrides: Any) -> SubmittedReport:
    return report_submit(notice=Notice(**notice_payload(**overrides)))


def take_down(report: Report, user: User, reason: str = "ncii") -> Decision:
    task = report.tasks.get(kind=ReviewTask.Kind.REPORT)
    return decision_make(task_id=task.pk, user=user, outcome="takedown", reason=reason).decision


def scan_verdict(data: bytes) -> str:
    """What the scan API answers a platform that uploads ``data`` (hashed, matched and scored in one call)."""
    key = ApiKey.objects.filter(kind=ApiKey.Kind.PLATFORM, name="scan-tests").first()
    if key is None:
        key, _secret = api_key_create(kind=ApiKey.Kind.PLATFORM, name="scan-tests")
    return scan_submit(data=data, api_key_id=key.pk, detection=DETECTION_INLINE).verdict


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)


@contextmanager
def loopback_server(answer: Callable[[Received, int], tuple[int, dict[str, Any]]]) -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 (a free port) recording each POST; ``answer(request, n)`` gives
    ``(status, json body)`` for the n-th request (0-based)."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            receiver.requests.append(received)
            status, body = answer(received, len(receiver.requests) - 1)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        receiver.url = url
        yield receiver


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], *, port: int = 0) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port, or ``port``) in a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def webhook_verified(received: Received, secret: str) -> bool:
    """What a platform does with a takedown webhook: verify it with the Standard Webhooks library (signature
    over id, timestamp and body; the timestamp within 5 minutes)."""
    try:
        Webhook(secret).verify(received.body, received.headers)
    except WebhookVerificationError:
        return False
    return True
