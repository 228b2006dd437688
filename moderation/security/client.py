"""Who is asking: the client's address, for rate limits, the PIN lockout, the login lockout and the audit's
source IP.

Behind a reverse proxy ``REMOTE_ADDR`` is the proxy's address, and every client would share one bucket.
The proxy appends the address it saw to ``X-Forwarded-For`` (nginx: ``$proxy_add_x_forwarded_for``), but
everything left of what a proxy we trust appended is whatever the client wrote. So the header is read
only through the proxies named in ``TAKEDOWN_TRUSTED_PROXIES`` (addresses or CIDR networks; empty, the
default: ``REMOTE_ADDR`` alone), walking it from the right:

- start with ``REMOTE_ADDR``; while the address in hand is a trusted proxy, step one entry left in
  ``X-Forwarded-For``; the first address that is not a trusted proxy is the client;
- an entry that is not an IP address (or the header running out) stops the walk at the last good
  address, which is a trusted hop's own address or one it vouched for, so no client picks its bucket
  by writing the header.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from moderation.env import parse_networks

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _trusted(values: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(parse_networks("TAKEDOWN_TRUSTED_PROXIES", values))


def _address(text: object) -> Address | None:
    """An address from a header entry or ``REMOTE_ADDR``: ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``,
    ``[2001:db8::1]:443``; an IPv4-mapped IPv6 address as IPv4. None for anything else."""
    value = str(text or "").strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # IPv4 with a port; IPv6 has two colons at least
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_ip(meta: Mapping[str, Any]) -> str | None:
    """The client's address (see the module's docstring); None when the server gave no usable address."""
    current = _address(meta.get("REMOTE_ADDR"))
    if current is None:
        return None
    trusted = _trusted(tuple(settings.TAKEDOWN_TRUSTED_PROXIES))
    if trusted:
        hops = str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")
        while hops and any(current in network for network in trusted):
            hop = _address(hops.pop())
            if hop is None:
                break
            current = hop
    return str(current)


def client_address(meta: Mapping[str, Any]) -> str:
    """The client's address as a rate-limit and lockout key ("unknown" when there is none)."""
    return client_ip(meta) or "unknown"


def request_client_ip(request: Any) -> str | None:
    """``client_ip`` of a request: django-axes' ``AXES_CLIENT_IP_CALLABLE``, so login lockouts agree."""
    return client_ip(request.META)
