"""``{% media_url media_id %}``: a short-lived media link signed for the user viewing the page."""

from __future__ import annotations

from typing import Any

from django import template

from moderation.services.media import media_signed_url

register = template.Library()


@register.simple_tag(takes_context=True)
def media_url(context: dict[str, Any], media_id: int) -> str:
    return media_signed_url(media_id=media_id, user_id=context["request"].user.pk)
