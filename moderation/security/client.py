"""Who is asking: the client's address, for rate limits, the PIN lockout and the audit's source IP."""

from __future__ import annotations


def client_address(meta: dict[str, object]) -> str:
    """The client's address as the server saw it (a proxy in front should set REMOTE_ADDR correctly)."""
    return str(meta.get("REMOTE_ADDR") or "unknown")
