"""Adapters to the host platform: which locations are its own, fetching reported content, and carrying out
decisions on it (docs/platforms.md).

``TAKEDOWN_PLATFORM`` picks the content source and ``TAKEDOWN_ENFORCER`` the enforcer: a short name
(``demo``: the built-in demo platform; ``http``: the generic contract, docs/platform-api.yaml; ``webhook``:
signed takedown webhooks, docs/webhooks.md; ``atproto``: Bluesky and other AT Protocol services, through
Ozone) or the dotted path of a class implementing the protocols of
``platforms/base.py``. A class is built with its ``from_settings()`` class method if it has one, else with no
arguments. The enforcer defaults to the platform's own name; a platform that cannot enforce (``http``)
enforces through ``webhook``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from moderation.platforms.base import (
    ContentGone,
    ContentNotFound,
    ContentSource,
    ContentUnfetchable,
    Enforcer,
    FetchedMedia,
    LocationRejected,
    PlatformError,
    PlatformRefused,
    PlatformUnavailable,
)

__all__ = ["ContentGone", "ContentNotFound", "ContentSource", "ContentUnfetchable", "Enforcer", "FetchedMedia",
           "LocationRejected", "PlatformError", "PlatformRefused", "PlatformUnavailable", "adapter_class",
           "get_content_source", "get_enforcer"]

SOURCES = {
    "demo": "moderation.platforms.demo.DemoPlatform",
    "http": "moderation.platforms.generic.HttpPlatform",
    "atproto": "moderation.platforms.atproto.AtprotoPlatform",
}
ENFORCERS = {
    "demo": "moderation.platforms.demo.DemoPlatform",
    "webhook": "moderation.platforms.webhook.WebhookEnforcer",
    "http": "moderation.platforms.webhook.WebhookEnforcer",  # the http contract enforces by webhook
    "atproto": "moderation.platforms.atproto.AtprotoPlatform",  # through Ozone's moderation events
}


def get_content_source() -> ContentSource:
    source: ContentSource = _build(str(settings.TAKEDOWN_PLATFORM), SOURCES, ContentSource, "TAKEDOWN_PLATFORM")
    return source


def get_enforcer() -> Enforcer:
    """The enforcer; a platform's own class may be named once, in TAKEDOWN_PLATFORM, for both roles."""
    name = str(settings.TAKEDOWN_ENFORCER or settings.TAKEDOWN_PLATFORM)
    enforcer: Enforcer = _build(name, ENFORCERS, Enforcer, "TAKEDOWN_ENFORCER")
    return enforcer


def adapter_class(name: str, short_names: dict[str, str], setting: str) -> type:
    """The class a setting names (a short name or a dotted path), or ImproperlyConfigured saying what to use."""
    path = short_names.get(name, name)
    if "." not in path:
        raise ImproperlyConfigured(f"{setting}={name!r} is not known; use one of {', '.join(sorted(short_names))} "
                                   "or the dotted path of an adapter class (docs/platforms.md).")
    try:
        found = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{setting}={name!r}: cannot import {path!r} ({exc}).") from exc
    if not isinstance(found, type):
        raise ImproperlyConfigured(f"{setting}={name!r} names {type(found).__name__} {path!r}, not a class.")
    return found


def _build(name: str, short_names: dict[str, str], protocol: Any, setting: str) -> Any:
    cls = adapter_class(name, short_names, setting)
    factory: Any = getattr(cls, "from_settings", None)
    adapter = factory() if callable(factory) else cls()
    if not isinstance(adapter, protocol):
        missing = sorted(n for n in _protocol_members(protocol) if not hasattr(adapter, n))
        raise ImproperlyConfigured(f"{setting}={name!r}: {cls.__module__}.{cls.__qualname__} does not implement "
                                   f"{protocol.__name__} (missing: {', '.join(missing)}; see "
                                   "moderation/platforms/base.py).")
    return adapter


def _protocol_members(protocol: type) -> set[str]:
    return {n for n in getattr(protocol, "__protocol_attrs__", set()) if not n.startswith("_")} or {
        n for n in vars(protocol) if not n.startswith("_")}
