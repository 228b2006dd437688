"""Webhook deliveries that failed for good (dead letters): listing and replaying them (admin site and
``manage.py webhook_deliveries``). Sending is the webhook enforcer's (``platforms/webhook.py``)."""

from __future__ import annotations

from moderation.audit import SYSTEM, audit_record
from moderation.models import Action, WebhookDelivery
from moderation.platforms.base import ContentNotFound, PlatformError, PlatformRefused
from moderation.platforms.webhook import WebhookEnforcer, delivery_dead, delivery_send
from moderation.services.enforcement import action_retry


def dead_letters() -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DEAD).order_by("id"))


def delivery_replay(*, delivery_id: int) -> WebhookDelivery:
    """Send a dead letter again. When it carried an action, the action is carried out again through its task,
    with the task's retries; otherwise it is sent once, here. Failing again makes it a dead letter again."""
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    if delivery.status == WebhookDelivery.Status.DELIVERED:
        return delivery
    audit_record(actor=SYSTEM, action="webhook.replayed", object_type="webhook", object_id=delivery.pk,
                 data={"event": delivery.event})
    action_id = delivery.action_id
    if action_id is not None and Action.objects.filter(pk=action_id).exclude(status=Action.Status.DONE).exists():
        action_retry(action_id=action_id)
    else:
        try:
            delivery_send(delivery, enforcer=WebhookEnforcer.from_settings())
        except (PlatformError, PlatformRefused) as exc:
            delivery_dead(delivery, str(exc))
        except ContentNotFound:
            pass  # recorded on the delivery: the content is gone, nothing left to deliver
    delivery.refresh_from_db()
    return delivery
