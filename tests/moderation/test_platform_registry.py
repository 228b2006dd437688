"""Adapters are chosen by short name or dotted path: a platform can ship its own without forking Takedown."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from moderation.platforms import get_content_source, get_enforcer
from moderation.platforms.base import FetchedMedia, LocationRejected
from moderation.platforms.demo import DemoPlatform
from moderation.platforms.webhook import WebhookEnforcer
from moderation.services.intake import locations_normalise

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes once decoded; test-only


class TinySource:
    """A platform's own adapter: items are ``tiny:<n>``."""

    name = "tiny"

    def describe(self) -> str:
        return "tiny items, like tiny:1"

    def normalise(self, location: str) -> str:
        text = location.strip().lower()
        if not text.startswith("tiny:") or not text[5:].isdigit():
            raise LocationRejected(f"It is not a tiny item: we can act on {self.describe()}.")
        return f"tiny:{int(text[5:])}"

    def fetch(self, location: str) -> list[FetchedMedia]:
        raise NotImplementedError  # not needed to show the loading


class TinyEnforcer:
    name = "tiny"
    built_from_settings = False

    @classmethod
    def from_settings(cls) -> TinyEnforcer:
        made = cls()
        made.built_from_settings = True
        return made

    def remove(self, *, location: str, reason: str, idempotency_key: str,
               statement: dict[str, Any] | None = None) -> None: ...

    def restore(self, *, location: str, reason: str, idempotency_key: str) -> None: ...

    def uploader_contact(self, location: str) -> str | None:
        return None


class HalfAnAdapter:
    name = "half"

    def fetch(self, location: str) -> list[FetchedMedia]:
        return []


def test_short_names_pick_the_built_in_adapters(settings: Any) -> None:
    settings.TAKEDOWN_PLATFORM = "demo"
    settings.TAKEDOWN_ENFORCER = "demo"
    assert isinstance(get_content_source(), DemoPlatform)
    assert isinstance(get_enforcer(), DemoPlatform)


def test_a_dotted_path_loads_the_platforms_own_classes(settings: Any) -> None:
    settings.TAKEDOWN_PLATFORM = f"{__name__}.TinySource"
    settings.TAKEDOWN_ENFORCER = f"{__name__}.TinyEnforcer"
    source = get_content_source()
    enforcer = get_enforcer()
    assert isinstance(source, TinySource)
    assert isinstance(enforcer, TinyEnforcer) and enforcer.built_from_settings


def test_intake_uses_the_loaded_adapters_location_rules(settings: Any) -> None:
    settings.TAKEDOWN_PLATFORM = f"{__name__}.TinySource"
    canonical, problems = locations_normalise(["tiny:007", "TINY:7", "https://elsewhere.example/p/1", "tiny:8"])
    assert canonical == ["tiny:7", "tiny:8"]
    assert problems == ["Link 3 (https://elsewhere.example/p/1): It is not a tiny item: we can act on tiny items, "
                        "like tiny:1."]


def test_a_class_missing_part_of_the_protocol_is_refused_naming_what_is_missing(settings: Any) -> None:
    settings.TAKEDOWN_PLATFORM = f"{__name__}.HalfAnAdapter"
    with pytest.raises(ImproperlyConfigured, match=r"does not implement ContentSource \(missing: describe, normalise"):
        get_content_source()


@pytest.mark.parametrize(("value", "message"), [
    ("nonsense", "is not known; use one of atproto, demo, http or the dotted path"),
    ("no.such.module.Source", "cannot import 'no.such.module.Source'"),
    (f"{__name__}.SECRET", "not a class"),
])
def test_a_wrong_setting_says_what_to_use(settings: Any, value: str, message: str) -> None:
    settings.TAKEDOWN_PLATFORM = value
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(")):
        get_content_source()


def test_the_http_platform_enforces_through_the_signed_webhook(settings: Any) -> None:
    settings.TAKEDOWN_PLATFORM = "http"
    settings.TAKEDOWN_ENFORCER = "http"
    settings.TAKEDOWN_WEBHOOK_URL = "https://platform.example/hooks"
    settings.TAKEDOWN_WEBHOOK_SECRET = SECRET
    assert isinstance(get_enforcer(), WebhookEnforcer)


def test_the_http_platform_without_its_settings_says_which_are_missing(settings: Any) -> None:
    settings.TAKEDOWN_PLATFORM = "http"
    settings.TAKEDOWN_HTTP_RESOLVE_URL = ""
    with pytest.raises(ImproperlyConfigured, match="TAKEDOWN_HTTP_RESOLVE_URL"):
        get_content_source()
    settings.TAKEDOWN_HTTP_RESOLVE_URL = "https://platform.example/takedown/resolve"
    settings.TAKEDOWN_HTTP_LOCATION_HOSTS = []
    with pytest.raises(ImproperlyConfigured, match="TAKEDOWN_HTTP_LOCATION_HOSTS"):
        get_content_source()
