"""The webhook enforcer: decisions are sent to the host platform as signed JSON POSTs.

Each request carries:
- ``Content-Type: application/json``, body ``{"event", "location", "reason", "idempotency_key", "sent_at",
  "statement"}`` (the statement of reasons has no personal data);
- ``Idempotency-Key``: the action's key; the platform must treat a repeat as the same request;
- ``X-Takedown-Timestamp`` (Unix seconds) and ``X-Takedown-Signature: sha256=<hex>``, the HMAC-SHA256 of
  ``"<timestamp>.<body>"`` under the shared secret (:func:`signature`), so the platform can check origin
  and freshness.

A delivery is tried ``TAKEDOWN_WEBHOOK_ATTEMPTS`` times with exponential backoff; a 2xx answer delivers
it, a 404/410 means the content is gone (``ContentNotFound``), other 4xx answers and every failure after
the last attempt make it a dead letter (``WebhookDelivery`` status ``dead``), which admins see in the
admin site and replay (``services/webhooks.py``, ``manage.py webhook_deliveries --replay``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from moderation.audit import SYSTEM, audit_record
from moderation.models import Action, WebhookDelivery
from moderation.platforms.base import ContentNotFound, PlatformError

SIGNATURE_HEADER = "X-Takedown-Signature"
TIMESTAMP_HEADER = "X-Takedown-Timestamp"
GONE_STATUSES = (404, 410)  # the platform says the content no longer exists


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``b"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signature_valid(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, timestamp, body), header)


@dataclass
class WebhookEnforcer:
    url: str
    secret: str
    timeout: float
    attempts: int
    backoff_ms: int
    sleep: Callable[[float], None] = time.sleep
    name: str = "webhook"

    @classmethod
    def from_settings(cls) -> WebhookEnforcer:
        if not settings.TAKEDOWN_WEBHOOK_URL or not settings.TAKEDOWN_WEBHOOK_SECRET:
            raise ImproperlyConfigured("TAKEDOWN_ENFORCER=webhook needs TAKEDOWN_WEBHOOK_URL and "
                                       "TAKEDOWN_WEBHOOK_SECRET (a long random string shared with the platform).")
        if not settings.TAKEDOWN_WEBHOOK_URL.startswith(("https://", "http://")):
            raise ImproperlyConfigured("TAKEDOWN_WEBHOOK_URL must start with https:// (or http:// for testing).")
        return cls(url=settings.TAKEDOWN_WEBHOOK_URL, secret=settings.TAKEDOWN_WEBHOOK_SECRET,
                   timeout=settings.TAKEDOWN_WEBHOOK_TIMEOUT_SECONDS, attempts=settings.TAKEDOWN_WEBHOOK_ATTEMPTS,
                   backoff_ms=settings.TAKEDOWN_WEBHOOK_BACKOFF_MS)

    def remove(self, *, location: str, reason: str, idempotency_key: str,
               statement: dict[str, Any] | None = None) -> None:
        self._deliver("content.remove", location=location, reason=reason, idempotency_key=idempotency_key,
                      statement=statement)

    def restore(self, *, location: str, reason: str, idempotency_key: str) -> None:
        self._deliver("content.restore", location=location, reason=reason, idempotency_key=idempotency_key,
                      statement=None)

    def uploader_contact(self, location: str) -> str | None:
        return None  # the platform tells its uploader; the statement travels in the webhook

    def _deliver(self, event: str, *, location: str, reason: str, idempotency_key: str,
                 statement: dict[str, Any] | None) -> None:
        payload = {"event": event, "location": location, "reason": reason, "idempotency_key": idempotency_key,
                   "statement": statement}
        delivery, _ = WebhookDelivery.objects.get_or_create(
            idempotency_key=idempotency_key,
            defaults={"event": event, "url": self.url, "payload": payload,
                      "action_id": _action_id(idempotency_key)})
        if delivery.status == WebhookDelivery.Status.DELIVERED:
            return
        if delivery.payload != payload:  # a retry sends what holds now (e.g. the statement, once made)
            WebhookDelivery.objects.filter(pk=delivery.pk).update(payload=payload)
            delivery.payload = payload
        delivery_send(delivery, enforcer=self)


def _action_id(idempotency_key: str) -> int | None:
    return Action.objects.filter(idempotency_key=idempotency_key).values_list("pk", flat=True).first()


def delivery_send(delivery: WebhookDelivery, *, enforcer: WebhookEnforcer) -> None:
    """Try the delivery up to ``enforcer.attempts`` times; mark it delivered or dead."""
    last_error = ""
    for attempt in range(enforcer.attempts):
        if attempt:
            enforcer.sleep(enforcer.backoff_ms / 1000 * 2 ** (attempt - 1))
        WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=delivery.attempts + 1)
        delivery.attempts += 1
        body = json.dumps({**delivery.payload, "sent_at": timezone.now().isoformat()},
                          sort_keys=True, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        request = urllib.request.Request(delivery.url, data=body, method="POST", headers={  # noqa: S310 - http(s) checked
            "Content-Type": "application/json", "Idempotency-Key": delivery.idempotency_key,
            TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(enforcer.secret, timestamp, body),
            "User-Agent": "Takedown-webhook/1"})
        try:
            with urllib.request.urlopen(request, timeout=enforcer.timeout) as response:  # noqa: S310 - https/http URL from settings
                response.read(1024)
        except urllib.error.HTTPError as exc:
            if exc.code in GONE_STATUSES:
                _mark(delivery, WebhookDelivery.Status.DELIVERED, f"platform answered {exc.code}: content gone")
                raise ContentNotFound(f"The platform answered {exc.code} for this content.") from exc
            last_error = f"platform answered HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                break  # the platform refuses this request: retrying the same body will not help
            continue
        except (urllib.error.URLError, OSError) as exc:
            last_error = f"could not reach the platform: {getattr(exc, 'reason', exc)}"
            continue
        _mark(delivery, WebhookDelivery.Status.DELIVERED, "")
        return
    _mark(delivery, WebhookDelivery.Status.DEAD, last_error)
    raise PlatformError(f"Webhook {delivery.event} failed after {delivery.attempts} attempts: {last_error}")


def _mark(delivery: WebhookDelivery, status: str, error: str) -> None:
    with transaction.atomic():
        now = timezone.now()
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=status, last_error=error[:500], delivered_at=now if status == WebhookDelivery.Status.DELIVERED
            else None)
        delivery.status = status
        audit_record(actor=SYSTEM, action=f"webhook.{status}", object_type="webhook", object_id=delivery.pk,
                     data={"event": delivery.event, "attempts": delivery.attempts, "error": error[:200]})
