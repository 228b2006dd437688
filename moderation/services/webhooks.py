"""Webhook deliveries that failed for good (dead letters): listing and replaying them (admin site and
``manage.py webhook_deliveries``). Sending is the webhook enforcer's (``platforms/webhook.py``)."""

from __future__ import annotations

from moderation.audit import SYSTEM, audit_record
from moderation.models import WebhookDelivery
from moderation.platforms.base import ContentNotFound, PlatformError
from moderation.platforms.webhook import WebhookEnforcer, delivery_send
from moderation.services.enforcement import action_retry


def dead_letters() -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DEAD).order_by("id"))


def delivery_replay(*, delivery_id: int) -> WebhookDelivery:
    """Send a dead letter again. When it carried an action, the action is carried out again through its task."""
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    if delivery.status == WebhookDelivery.Status.DELIVERED:
        return delivery
    audit_record(actor=SYSTEM, action="webhook.replayed", object_type="webhook", object_id=delivery.pk,
                 data={"event": delivery.event})
    if delivery.action_id is not None:
        action_retry(action_id=delivery.action_id)
    else:
        try:
            delivery_send(delivery, enforcer=WebhookEnforcer.from_settings())
        except (PlatformError, ContentNotFound):
            pass  # the outcome is recorded on the delivery
    delivery.refresh_from_db()
    return delivery
