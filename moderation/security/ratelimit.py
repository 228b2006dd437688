"""Per-client rate limits on the public endpoints, counted in Django's cache (fixed windows).

``TAKEDOWN_RATE_LIMITS`` maps a scope to ``(requests, seconds)``; a client (its address, ``client.py``:
through trusted proxies only) past the limit gets 429 with ``Retry-After`` until the window ends. With
several web processes the cache must be shared (Redis via ``REDIS_URL``), or each process counts on its
own. Cache keys hold a digest of the address, not the address.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from moderation.security.client import client_address


def _limit(scope: str) -> tuple[int, int]:
    limits: dict[str, tuple[int, int]] = settings.TAKEDOWN_RATE_LIMITS
    if scope not in limits:
        raise KeyError(f"No rate limit named {scope!r} in TAKEDOWN_RATE_LIMITS.")
    return limits[scope]


def rate_limit_hit(scope: str, client: str) -> int | None:
    """Count one request of ``client`` in ``scope``; the seconds to wait if it is over the limit, else None."""
    allowed, window = _limit(scope)
    now = int(time.time())
    start = now - now % window
    digest = hashlib.sha256(f"{scope}:{client}".encode()).hexdigest()[:32]
    key = f"ratelimit:{scope}:{digest}:{start}"
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 1)
        count = 1
    if count > allowed:
        return max(1, start + window - now)
    return None


def too_many_requests(request: HttpRequest, retry_after: int) -> HttpResponse:
    response = render(request, "rate_limited.html", {"minutes": max(1, (retry_after + 59) // 60)}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def rate_limited(scope: str, *, methods: tuple[str, ...] = ("POST",)) -> Callable[[Callable[..., HttpResponse]],
                                                                                  Callable[..., HttpResponse]]:
    """Decorate a page view: requests with one of ``methods`` count against ``scope``."""
    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method in methods:
                wait = rate_limit_hit(scope, client_address(request.META))
                if wait is not None:
                    return too_many_requests(request, wait)
            return view(request, *args, **kwargs)
        return wrapped
    return decorate


class ScopedRateThrottle(BaseThrottle):
    """The same limits for API views: set ``throttle_scope`` on the view; DRF answers 429 + Retry-After."""

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        scope = getattr(view, "throttle_scope", None)
        if not scope:
            return True
        self._wait = rate_limit_hit(scope, client_address(request.META))
        return self._wait is None

    def wait(self) -> float | None:
        return float(self._wait) if self._wait is not None else None
