"""Location rules: which URLs are a platform's own, and their one canonical form (docs/platforms.md, "Locations").

Pure functions, no I/O: the intake checks every reported location with its platform's rules before anything
is saved, so a location that is not on the platform is refused at once, naming the line.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from moderation.platforms.base import LocationRejected

MAX_LOCATION_CHARS = 2000
_UNRESERVED = "-._~"
_PATH_SAFE = "/!$&'()*+,;=:@"  # RFC 3986 pchar sub-delims and ':' '@' stay as they are
_DEFAULT_PORTS = {"https": 443, "http": 80}


def host_canonical(host: str) -> str:
    """Lowercase, no trailing dot, IDNA (ASCII) for international names. ValueError when not a host name."""
    host = host.strip().rstrip(".").lower()
    if not host:
        raise ValueError("no host")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{host!r} is not a valid host name") from exc
    return host


def host_matches(host: str, pattern: str) -> bool:
    """``pattern`` is a host (``cdn.example``) or ``*.`` and a domain (every subdomain of it, not itself)."""
    pattern = pattern.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def path_canonical(path: str) -> str:
    """Dot segments resolved, repeated and trailing slashes dropped, percent-escapes in one form."""
    path = re.sub(r"/{2,}", "/", path or "/")
    normal = posixpath.normpath(path)
    if normal.startswith("//"):  # POSIX keeps a leading double slash
        normal = "/" + normal.lstrip("/")
    if normal == ".":
        normal = "/"
    # Decode everything, then quote what must be quoted: unreserved characters end up plain, the rest as
    # upper-case escapes, whichever way the reporter's browser wrote them. An escaped '/' stays escaped.
    segments = [quote(unquote(segment), safe=_PATH_SAFE.replace("/", "") + _UNRESERVED)
                for segment in normal.split("/")]
    return "/".join(segments) or "/"


@dataclass(frozen=True)
class UrlRules:
    """The web locations of a platform: its hosts (the first is canonical, the rest are aliases of it), the
    paths that name content, and the query parameters that identify it (all others are dropped)."""

    hosts: tuple[str, ...]
    paths: re.Pattern[str] | None = None
    keep_params: frozenset[str] = field(default_factory=frozenset)
    example: str = ""

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ValueError("UrlRules needs at least one host")
        object.__setattr__(self, "hosts", tuple(host_canonical(h) for h in self.hosts))

    @property
    def canonical_host(self) -> str:
        return self.hosts[0]

    def describe(self) -> str:
        example = self.example or f"https://{self.canonical_host}/..."
        return f"links to {self.canonical_host}, like {example}"

    def owns(self, location: str) -> bool:
        try:
            self.normalise(location)
        except LocationRejected:
            return False
        return True

    def normalise(self, location: str) -> str:
        text = location.strip()
        if not text:
            raise LocationRejected("The link is empty.")
        if len(text) > MAX_LOCATION_CHARS:
            raise LocationRejected(f"The link is longer than {MAX_LOCATION_CHARS} characters.")
        if any(c.isspace() for c in text):
            raise LocationRejected("The link contains spaces; copy it again from the address bar.")
        try:
            parts = urlsplit(text)
            port = parts.port
            host = host_canonical(parts.hostname or "")
        except ValueError as exc:
            raise LocationRejected(f"This is not a web address ({exc}).") from exc
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise LocationRejected("This is not a web address (https://...).")
        if parts.username is not None or parts.password is not None:
            raise LocationRejected("Links with a user name or password in them are not accepted.")
        if host not in self.hosts:
            raise LocationRejected(f"It is not on this platform: we can act on {self.describe()}.")
        if port is not None and port != _DEFAULT_PORTS[scheme]:
            raise LocationRejected(f"It is not on this platform (port {port}): we can act on {self.describe()}.")
        path = path_canonical(parts.path)
        if path == "/" or (self.paths is not None and not self.paths.search(path)):
            raise LocationRejected(f"It does not name a post, photo or video: we can act on {self.describe()}.")
        kept = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k in self.keep_params)
        query = urlencode(kept, quote_via=quote, safe=_UNRESERVED)
        return urlunsplit(("https", self.canonical_host, path, query, ""))
