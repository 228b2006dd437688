"""The webhook enforcer: decisions are sent to the host platform as JSON POSTs signed per the Standard
Webhooks specification (https://www.standardwebhooks.com/; docs/webhooks.md for platforms).

Each request carries:
- ``Content-Type: application/json``, body ``{"event", "location", "reason", "idempotency_key", "sent_at",
  "statement"}`` (the statement of reasons has no personal data);
- ``webhook-id``: the action's idempotency key, the same on every retry (also sent as ``Idempotency-Key``);
  the platform must treat a repeat as the same request;
- ``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
  "<id>.<timestamp>.<body>">`` under the ``TAKEDOWN_WEBHOOK_SECRET`` (``whsec_`` + base64), made by the
  ``standardwebhooks`` library, so the platform verifies origin and freshness with a library in its language.

One call makes ONE attempt (the one HTTP client, ``moderation/http.py``, without its own retries); retrying
is the Celery task's (``moderation.tasks.carry_out_action``: backoff with jitter, 8 retries). A 2xx answer
delivers; 404/410 mean the content is gone (``ContentNotFound``); a connection error, a timeout, 5xx, 408 and
429 raise ``PlatformError``, which the task retries; any other 4xx raises ``PlatformRefused``, which it does
not. When the task gives up (retries exhausted, or a refusal) the delivery becomes a dead letter
(``WebhookDelivery`` status ``dead``, one ``webhook.dead`` audit event: :func:`action_deliveries_dead`), which
admins see in the admin site and replay (``services/webhooks.py``, ``manage.py webhook_deliveries --replay``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from standardwebhooks import Webhook

from moderation import http
from moderation.audit import SYSTEM, audit_record
from moderation.models import Action, WebhookDelivery
from moderation.platforms.base import ContentNotFound, PlatformError, PlatformRefused

KEY_PREFIX = "whsec_"
KEY_BYTES = (24, 64)  # Standard Webhooks: secrets of 24 to 64 random bytes
MAKE_ONE = ("python -c \"import base64, secrets; "
               "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\"")
MAX_ANSWER_BYTES = 64 * 1024  # the platform's answer is not used; a longer one is refused unread


def webhook_signer(secret: str) -> Webhook:
    """The Standard Webhooks signer for ``secret`` (``whsec_`` + base64 of 24-64 bytes), or
    ImproperlyConfigured saying how to make one. The secret never appears in the message."""
    how = f"Make one with: {MAKE_ONE}, and give the platform the same value (docs/webhooks.md)."
    if not secret.startswith(KEY_PREFIX):
        raise ImproperlyConfigured("TAKEDOWN_WEBHOOK_SECRET must be a Standard Webhooks secret: 'whsec_' followed "
                                   f"by base64 of 24 to 64 random bytes. {how}")
    try:
        key = base64.b64decode(secret[len(KEY_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"TAKEDOWN_WEBHOOK_SECRET is not valid base64 after 'whsec_'. {how}") from None
    low, high = KEY_BYTES
    if not low <= len(key) <= high:
        raise ImproperlyConfigured(f"TAKEDOWN_WEBHOOK_SECRET holds {len(key)} bytes; Standard Webhooks secrets "
                                   f"hold {low} to {high}. {how}")
    return Webhook(key)


@dataclass
class WebhookEnforcer:
    url: str
    secret: str
    timeout: float
    name: str = "webhook"
    client: http.HttpClient = field(init=False)
    signer: Webhook = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.signer = webhook_signer(self.secret)
        self.client = http.HttpClient(
            purpose="webhook", retry=http.ONE_ATTEMPT, max_bytes=MAX_ANSWER_BYTES,
            timeouts=http.Timeouts(connect=min(self.timeout, 5.0), read=self.timeout, total=self.timeout))

    @classmethod
    def from_settings(cls) -> WebhookEnforcer:
        if not settings.TAKEDOWN_WEBHOOK_URL or not settings.TAKEDOWN_WEBHOOK_SECRET:
            raise ImproperlyConfigured("TAKEDOWN_ENFORCER=webhook needs TAKEDOWN_WEBHOOK_URL and "
                                       "TAKEDOWN_WEBHOOK_SECRET (a Standard Webhooks secret shared with the "
                                       f"platform; make one with: {MAKE_ONE}).")
        if not settings.TAKEDOWN_WEBHOOK_URL.startswith(("https://", "http://")):
            raise ImproperlyConfigured("TAKEDOWN_WEBHOOK_URL must start with https:// (or http:// for testing).")
        return cls(url=settings.TAKEDOWN_WEBHOOK_URL, secret=settings.TAKEDOWN_WEBHOOK_SECRET,
                   timeout=settings.TAKEDOWN_WEBHOOK_TIMEOUT_SECONDS)

    def remove(self, *, location: str, reason: str, idempotency_key: str,
               statement: dict[str, Any] | None = None) -> None:
        self._deliver("content.remove", location=location, reason=reason, idempotency_key=idempotency_key,
                      statement=statement)

    def restore(self, *, location: str, reason: str, idempotency_key: str) -> None:
        self._deliver("content.restore", location=location, reason=reason, idempotency_key=idempotency_key,
                      statement=None)

    def uploader_contact(self, location: str) -> str | None:
        return None  # the platform tells its uploader; the statement travels in the webhook

    def headers(self, *, message_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
        """The Standard Webhooks headers for ``body``, plus ``Idempotency-Key`` and the content type."""
        at = at or datetime.now(UTC)
        return {"Content-Type": "application/json", "Idempotency-Key": message_id,
                "webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": self.signer.sign(message_id, at, body)}

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


@register(Tags.security)
def webhook_settings_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """With the webhook enforcer, its URL and secret must be usable (``manage.py check``), not only at the
    first takedown."""
    if settings.TAKEDOWN_ENFORCER not in ("webhook", "http"):  # "http" enforces by webhook
        return []
    try:
        WebhookEnforcer.from_settings()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="takedown.E101")]
    return []


def _action_id(idempotency_key: str) -> int | None:
    return Action.objects.filter(idempotency_key=idempotency_key).values_list("pk", flat=True).first()


def delivery_send(delivery: WebhookDelivery, *, enforcer: WebhookEnforcer) -> None:
    """One attempt at the delivery. Delivered (or gone: ``ContentNotFound``) is recorded here; a failure is
    noted on the delivery (attempts, last error) and raised: ``PlatformError`` when a retry may succeed,
    ``PlatformRefused`` when it cannot. Whoever gives up writes the dead letter (:func:`delivery_dead`)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1,
                                                          status=WebhookDelivery.Status.PENDING)
    delivery.attempts += 1
    delivery.status = WebhookDelivery.Status.PENDING  # a dead letter being sent again is live until it fails
    body = json.dumps({**delivery.payload, "sent_at": timezone.now().isoformat()},
                      sort_keys=True, separators=(",", ":")).encode()
    try:
        enforcer.client.post(delivery.url, content=body,
                             headers=enforcer.headers(message_id=delivery.idempotency_key, body=body))
    except http.Gone as exc:
        _delivered(delivery, f"platform answered {exc.status}: content gone")
        raise ContentNotFound(f"The platform answered {exc.status} for this content.") from exc
    except http.HttpError as exc:
        error = _error_text(exc)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(last_error=error[:500])
        delivery.last_error = error[:500]
        if isinstance(exc, http.Transient):
            raise PlatformError(f"Webhook {delivery.event} not delivered (attempt {delivery.attempts}): "
                                f"{error}") from exc
        raise PlatformRefused(f"Webhook {delivery.event} refused: {error}") from exc
    _delivered(delivery, "")


def _error_text(exc: http.HttpError) -> str:
    if isinstance(exc, http.StatusError):
        return f"platform answered HTTP {exc.status}" + (f": {exc.detail}" if exc.detail else "")
    if isinstance(exc, http.Unreachable):
        return f"could not reach the platform: {exc}"
    return str(exc)


def delivery_dead(delivery: WebhookDelivery, error: str = "") -> bool:
    """Make a pending delivery a dead letter, with one ``webhook.dead`` audit event. False if it was not pending
    (delivered meanwhile, or dead already)."""
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING).update(
            status=WebhookDelivery.Status.DEAD, last_error=(delivery.last_error or error)[:500])
        if updated:
            delivery.status = WebhookDelivery.Status.DEAD
            audit_record(actor=SYSTEM, action="webhook.dead", object_type="webhook", object_id=delivery.pk,
                         data={"event": delivery.event, "attempts": delivery.attempts,
                               "error": (delivery.last_error or error)[:200]})
    return bool(updated)


def action_deliveries_dead(action_id: int, error: str) -> int:
    """The task carrying the action out gave up: its undelivered webhook becomes a dead letter. How many did."""
    pending = WebhookDelivery.objects.filter(action_id=action_id, status=WebhookDelivery.Status.PENDING)
    return sum(delivery_dead(delivery, error) for delivery in pending)


def _delivered(delivery: WebhookDelivery, note: str) -> None:
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.DELIVERED, last_error=note[:500], delivered_at=timezone.now())
        delivery.status = WebhookDelivery.Status.DELIVERED
        audit_record(actor=SYSTEM, action="webhook.delivered", object_type="webhook", object_id=delivery.pk,
                     data={"event": delivery.event, "attempts": delivery.attempts, "error": note[:200]})
