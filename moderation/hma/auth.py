"""Who may call the HMA-compatible routes (HMA itself checks no one).

- A platform key, as ``Authorization: Api-Key <key>`` or ``Authorization: Bearer <key>``: checked through
  ``api_key_authenticate``, which trusts a valid key for ``TAKEDOWN_API_KEY_CACHE_SECONDS`` per process (the
  scan API's hot-path check). A header that names a bad key is refused even from an allowed network.
- No header: allowed only from ``TAKEDOWN_HMA_ALLOW_NETWORKS`` (the client address as
  ``moderation.security.client`` reads it, ``X-Forwarded-For`` only through ``TAKEDOWN_TRUSTED_PROXIES``),
  for the hashing and matching routes.
- The curation routes (``/c/...``) need a platform key created with ``--curation``: other keys get 403,
  callers without a key 401, whatever their network.
- ``/status`` and ``/status/live`` are open, as ``/healthz`` and ``/readyz`` are: load balancers call them.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

from moderation.env import parse_networks
from moderation.hma.responses import HmaError
from moderation.models import ApiKey
from moderation.security.client import client_ip
from moderation.services.api_keys import api_key_authenticate

CHALLENGE = {"WWW-Authenticate": 'Api-Key realm="hma", Bearer realm="hma"'}
SCHEMES = ("api-key", "bearer")


@dataclass(frozen=True)
class Caller:
    """Who called: a platform key, or None for an anonymous caller from an allowed network."""

    key: ApiKey | None

    @property
    def actor(self) -> str:
        """The audit actor (keys by id, as the scan API records them)."""
        return f"api_key:{self.key.pk}" if self.key is not None else "anonymous"

    @property
    def source(self) -> str:
        """What bank entries added by this caller record as their source."""
        return f"hma:{self.key.prefix}" if self.key is not None else "hma"


@functools.lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(parse_networks("TAKEDOWN_HMA_ALLOW_NETWORKS", values))


def _allowed_network(request: HttpRequest) -> bool:
    allowed = tuple(settings.TAKEDOWN_HMA_ALLOW_NETWORKS)
    if not allowed:
        return False
    address = client_ip(request.META)
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip.version == network.version and ip in network for network in _networks(allowed))


def authenticate(request: HttpRequest, *, curation: bool) -> Caller:
    """The caller, or ``HmaError`` 401 (no usable key) or 403 (a key without the curation scope)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        if curation:
            raise HmaError(401, "The curation routes need a platform key with the curation scope: send "
                                "'Authorization: Api-Key <key>' (manage.py create_api_key --kind platform "
                                "--curation).", headers=CHALLENGE)
        if _allowed_network(request):
            return Caller(None)
        raise HmaError(401, "Send a platform key: 'Authorization: Api-Key <key>' or 'Authorization: Bearer <key>' "
                            "(manage.py create_api_key --kind platform).", headers=CHALLENGE)
    scheme, _, key = header.partition(" ")
    if scheme.lower() not in SCHEMES or not key.strip():
        raise HmaError(401, "Send the key as 'Authorization: Api-Key <key>' or 'Authorization: Bearer <key>'.",
                       headers=CHALLENGE)
    row = api_key_authenticate(key.strip(), kind=ApiKey.Kind.PLATFORM)
    if row is None:
        raise HmaError(401, "This API key is not valid or has been revoked.", headers=CHALLENGE)
    if curation and not row.curation:
        raise HmaError(403, "This key may hash and match but not change banks: the curation routes need a key "
                            "created with --curation (manage.py create_api_key --kind platform --curation).")
    return Caller(row)
