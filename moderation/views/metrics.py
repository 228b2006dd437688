"""``GET /metrics`` for Prometheus, never open by default.

- ``TAKEDOWN_METRICS_TOKEN`` set: the scrape must carry ``Authorization: Bearer <token>`` (else 401).
- ``TAKEDOWN_METRICS_ALLOW`` set (CIDR networks): the client's address, as rate limits see it
  (``security/client.py``: ``X-Forwarded-For`` only through ``TAKEDOWN_TRUSTED_PROXIES``), must be in one
  (else 403).
- Both set: both must hold. Neither set: 404, as if there were no such page.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from moderation.env import parse_networks
from moderation.security.client import client_ip
from moderation.services.metrics import metrics_page


@functools.lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(parse_networks("TAKEDOWN_METRICS_ALLOW", values))


def _token_holds(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _address_allowed(request: HttpRequest, allowed: tuple[str, ...]) -> bool:
    address = client_ip(request.META)
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in _networks(allowed))


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token: str = settings.TAKEDOWN_METRICS_TOKEN
    allowed = tuple(settings.TAKEDOWN_METRICS_ALLOW)
    if not token and not allowed:
        raise Http404("metrics are not enabled")
    if token and not _token_holds(request, token):
        denied = HttpResponse("A bearer token is needed.\n", status=401, content_type="text/plain")
        denied["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return denied
    if allowed and not _address_allowed(request, allowed):
        return HttpResponse("Not from this address.\n", status=403, content_type="text/plain")
    body, content_type = metrics_page(request.headers.get("Accept"))
    return HttpResponse(body, content_type=content_type)
