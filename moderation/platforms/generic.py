"""The generic ``http`` platform: any host that implements docs/platform-api.yaml.

Takedown sends ``POST <TAKEDOWN_HTTP_RESOLVE_URL>`` with ``{"type": "content.resolve", "location": ...}``,
signed per Standard Webhooks under ``TAKEDOWN_WEBHOOK_SECRET`` (or with a bearer token), and the platform
answers with the media items at that location and a download URL for each; every download goes through the
safe fetcher. Takedowns and restorations are the signed webhooks (``platforms/webhook.py``): with
``TAKEDOWN_PLATFORM=http`` the enforcer defaults to ``webhook``.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from moderation.platforms.base import ContentUnfetchable, FetchedMedia, LocationRejected
from moderation.platforms.fetch import FetchPolicy, SafeFetcher
from moderation.platforms.locations import UrlRules, host_canonical
from moderation.platforms.webhook import webhook_signer

MAX_ITEMS = 50
MAX_FIELD = {"id": 200, "uploader": 200, "url": 4096, "location": 2048}


@dataclass
class HttpPlatform:
    resolve_url: str
    rules: UrlRules
    media_hosts: tuple[str, ...]
    auth: str = "signature"
    secret: str = ""
    token: str = ""
    name: str = "http"
    _resolver: SafeFetcher = field(init=False, repr=False)
    _media: SafeFetcher = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.auth not in ("signature", "bearer"):
            raise ImproperlyConfigured(f"TAKEDOWN_HTTP_AUTH must be 'signature' or 'bearer'; got {self.auth!r}.")
        if self.auth == "signature":
            self._signer = webhook_signer(self.secret)
        elif not self.token:
            raise ImproperlyConfigured("TAKEDOWN_HTTP_AUTH=bearer needs TAKEDOWN_HTTP_TOKEN "
                                       "(or TAKEDOWN_HTTP_TOKEN_FILE).")
        resolver_host = urlsplit(self.resolve_url).hostname or ""
        self._resolver = SafeFetcher(FetchPolicy.from_settings([resolver_host]), purpose="platform http")
        self._media = SafeFetcher(FetchPolicy.from_settings(self.media_hosts), purpose="platform http")

    @classmethod
    def from_settings(cls) -> HttpPlatform:
        url = settings.TAKEDOWN_HTTP_RESOLVE_URL
        if not url:
            raise ImproperlyConfigured("TAKEDOWN_PLATFORM=http needs TAKEDOWN_HTTP_RESOLVE_URL, the platform's resolve "
                                       "endpoint (docs/platforms.md).")
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ImproperlyConfigured("TAKEDOWN_HTTP_RESOLVE_URL must be an https:// URL (http:// for testing).")
        hosts = tuple(settings.TAKEDOWN_HTTP_LOCATION_HOSTS)
        if not hosts:
            raise ImproperlyConfigured("TAKEDOWN_PLATFORM=http needs TAKEDOWN_HTTP_LOCATION_HOSTS: the hosts whose "
                                       "URLs are the platform's content, canonical host first.")
        try:
            paths = re.compile(settings.TAKEDOWN_HTTP_LOCATION_PATHS) if settings.TAKEDOWN_HTTP_LOCATION_PATHS else None
            rules = UrlRules(hosts=hosts, paths=paths, keep_params=frozenset(settings.TAKEDOWN_HTTP_KEEP_PARAMS))
        except (re.error, ValueError) as exc:
            raise ImproperlyConfigured(f"TAKEDOWN_HTTP_LOCATION_HOSTS / _PATHS: {exc}") from exc
        media_hosts = tuple(settings.TAKEDOWN_HTTP_MEDIA_HOSTS) or (parts.hostname, *rules.hosts)
        return cls(resolve_url=url, rules=rules, media_hosts=media_hosts, auth=settings.TAKEDOWN_HTTP_AUTH,
                   secret=settings.TAKEDOWN_WEBHOOK_SECRET, token=settings.TAKEDOWN_HTTP_TOKEN)

    # --- ContentSource ---

    def describe(self) -> str:
        return self.rules.describe()

    def normalise(self, location: str) -> str:
        return self.rules.normalise(location)

    def fetch(self, location: str) -> list[FetchedMedia]:
        location = self.normalise(location)
        answer = self._resolve(location)
        canonical, uploader, posted_at, items = self._read_answer(location, answer)
        fetched: list[FetchedMedia] = []
        try:
            for item in items:
                fetched.append(self._media.download(
                    item["url"], location=canonical, uploader=str(item.get("uploader") or uploader),
                    posted_at=_when(item.get("posted_at"), "items[].posted_at") or posted_at))
        except BaseException:
            for done in fetched:
                done.discard()
            raise
        return fetched

    # --- inside ---

    def headers(self, body: bytes) -> dict[str, str]:
        base = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.auth == "bearer":
            return {**base, "Authorization": f"Bearer {self.token}"}
        message_id = f"resolve-{secrets.token_hex(8)}"
        at = datetime.now(UTC)
        return {**base, "webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": self._signer.sign(message_id, at, body)}

    def _resolve(self, location: str) -> Any:
        body = json.dumps({"type": "content.resolve", "location": location}, separators=(",", ":")).encode()
        return self._resolver.call_json("POST", self.resolve_url, body=body, headers=self.headers(body))

    def _read_answer(self, location: str, answer: Any) -> tuple[str, str, datetime | None, list[dict[str, Any]]]:
        if not isinstance(answer, dict):
            raise _bad("is not a JSON object")
        items = answer.get("items")
        if not isinstance(items, list) or not items:
            raise _bad("has no items (a list of 1 to 50 media items)")
        if len(items) > MAX_ITEMS:
            raise _bad(f"lists {len(items)} items; at most {MAX_ITEMS} are read")
        for n, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
                raise _bad(f"items[{n}] has no url")
            for name, limit in MAX_FIELD.items():
                value = item.get(name)
                if value is not None and (not isinstance(value, str) or len(value) > limit):
                    raise _bad(f"items[{n}].{name} is not a string of at most {limit} characters")
            if urlsplit(item["url"]).scheme not in ("https", "http"):
                raise _bad(f"items[{n}].url is not an http(s) URL")
        canonical = location
        if answer.get("location") not in (None, ""):
            try:
                canonical = self.normalise(str(answer["location"]))
            except LocationRejected as exc:
                raise _bad(f"names location {str(answer['location'])[:200]!r}, which is not on this platform") from exc
        uploader = answer.get("uploader") or ""
        if not isinstance(uploader, str) or len(uploader) > MAX_FIELD["uploader"]:
            raise _bad("uploader is not a string of at most 200 characters")
        return canonical, uploader, _when(answer.get("posted_at"), "posted_at"), items


def _bad(what: str) -> ContentUnfetchable:
    return ContentUnfetchable(f"the platform's resolve answer {what} (docs/platform-api.yaml)")


def _when(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise _bad(f"{name} is not an RFC 3339 date")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(f"{name} {value[:40]!r} is not an RFC 3339 date") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@register(Tags.security)
def http_platform_settings_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """With ``TAKEDOWN_PLATFORM=http``, its settings must be usable (``manage.py check``)."""
    if settings.TAKEDOWN_PLATFORM != "http":
        return []
    try:
        HttpPlatform.from_settings()
        for host in settings.TAKEDOWN_HTTP_MEDIA_HOSTS:
            host_canonical(host.removeprefix("*."))
    except (ImproperlyConfigured, ValueError) as exc:
        return [Error(str(exc), id="takedown.E102")]
    return []

