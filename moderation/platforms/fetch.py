"""The safe fetcher: the one place where Takedown downloads reported content from a host platform.

A reported link is chosen by whoever files the report, so every download is treated as hostile:

- only ``http(s)`` URLs on the hosts the platform's policy names (:class:`FetchPolicy`), redirects included;
- the host name is resolved once per fetch and every address it has is checked: private, loopback,
  link-local, multicast, reserved, unspecified and shared (100.64.0.0/10) addresses are refused unless a
  network in ``allow_networks`` holds them. The connection then goes to the checked addresses themselves (a
  network backend that maps the name to them, trying each in turn), so a DNS answer that changes between
  check and connect (DNS rebinding) cannot send the request elsewhere; TLS and the ``Host`` header still
  carry the name;
- time limits on connecting, on waiting for the answer and each read, and on the whole attempt;
- a size limit, on the declared ``Content-Length`` before reading and on the bytes as they arrive;
- the type is read from the first bytes (:func:`sniff`), never from the ``Content-Type`` header, and anything
  that is not an image or video is refused at once;
- the body streams to a private file in :func:`spool_dir`, never whole into memory; nothing is left
  behind on failure.

Refusals are :class:`~moderation.platforms.base.ContentUnfetchable` subclasses whose ``reason`` a moderator
reads as "unprocessable: <reason>". 404 and 410 are ``ContentNotFound`` and ``ContentGone``; 5xx, 408, 429,
failed connections and answers that do not start in time are retried (``FetchPolicy.attempts`` tries in
all, waits from 0.5 s doubling to 5 s with jitter, ``Retry-After`` honoured up to 60 s), then
``PlatformError``; any other 4xx is ``PlatformRefused``. Messages and logs name scheme, host and path only
(:func:`~moderation.http.where`), never the query, headers or bytes.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import logging
import math
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpcore
import httpx
import tenacity
from django.conf import settings

from moderation.env import parse_networks
from moderation.http import (
    DETAIL_CHARS,
    MIB,
    VERSION,
    Response,
    Retry,
    ServerError,
    Throttled,
    Transient,
    Unreachable,
    response_detail,
    where,
)
from moderation.platforms.base import (
    ContentGone,
    ContentNotFound,
    ContentUnfetchable,
    FetchedMedia,
    PlatformError,
    PlatformRefused,
)

logger = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# The defaults of the TAKEDOWN_FETCH_* settings (moderation/settings.py says why each).
DEFAULT_MAX_BYTES = 200 * MIB
DEFAULT_CONNECT_SECONDS = 5.0
DEFAULT_FIRST_BYTE_SECONDS = 15.0
DEFAULT_TOTAL_SECONDS = 120.0
DEFAULT_ATTEMPTS = 3
# Waits between tries: 0.5 s doubling up to 5 s, each cut at random by up to half (many workers fetching
# from one platform do not retry in step). A Retry-After is honoured up to 60 s (docs/platforms.md).
WAIT_INITIAL_SECONDS = 0.5
WAIT_MAX_SECONDS = 5.0
RETRY_AFTER_MAX_SECONDS = 60.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Bytes read before the type is decided: enough for every signature below, the ISO-BMFF brands and the
# EBML DocType included (at least 32, as the issue asks; a shorter file is judged at its end).
SNIFF_BYTES = 64
JSON_MAX_BYTES = MIB  # an adapter's API answer (docs/platforms.md: "at most 1 MiB")
SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598): not reachable from outside


# --- Refusals -------------------------------------------------------------------------------------------

class HostNotAllowed(ContentUnfetchable):
    """The URL's host is not one the policy allows (or the URL is not http(s))."""


class RedirectNotAllowed(ContentUnfetchable):
    """A redirect pointed at a host the policy does not allow."""


class AddressNotAllowed(ContentUnfetchable):
    """The host resolves to an address Takedown must not connect to (private, loopback, ...)."""


class TooLarge(ContentUnfetchable):
    """The content is larger than ``FetchPolicy.max_bytes``; it was not read to the end."""


class TooSlow(ContentUnfetchable):
    """The download took longer than ``FetchPolicy.total_seconds``."""


class NotMedia(ContentUnfetchable):
    """The bytes are not an image or video Takedown accepts."""


# --- Policy ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FetchPolicy:
    """Where a fetch may go and how long and large it may be.

    ``hosts``: ``"cdn.example"`` allows that host only; ``"*.example.com"`` any host below example.com (not
    example.com itself). Case does not matter. An IP address is allowed as a host only when listed itself.
    ``allow_networks``: private networks fetched from anyway (a test platform on loopback; never in
    production). Seconds: ``connect_seconds`` to connect; ``first_byte_seconds`` from sending the request to
    the answer's headers, and for each read after; ``total_seconds`` for one try, to the last byte.
    ``attempts`` counts the first try.
    """

    hosts: tuple[str, ...]
    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    connect_seconds: float = DEFAULT_CONNECT_SECONDS
    first_byte_seconds: float = DEFAULT_FIRST_BYTE_SECONDS
    total_seconds: float = DEFAULT_TOTAL_SECONDS
    max_redirects: int = 5
    attempts: int = DEFAULT_ATTEMPTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", tuple(_host_pattern(pattern) for pattern in self.hosts))
        object.__setattr__(self, "allow_networks", tuple(ipaddress.ip_network(network, strict=False)
                                                         for network in self.allow_networks))
        if self.max_bytes < 1:
            raise ValueError("FetchPolicy.max_bytes must be at least 1.")
        if min(self.connect_seconds, self.first_byte_seconds, self.total_seconds) <= 0:
            raise ValueError("FetchPolicy's time limits must be above 0 seconds.")
        if self.max_redirects < 0:
            raise ValueError("FetchPolicy.max_redirects cannot be negative.")
        if self.attempts < 1:
            raise ValueError("FetchPolicy.attempts must be at least 1 (the first try counts).")

    @classmethod
    def from_settings(cls, hosts: Iterable[str]) -> FetchPolicy:
        """The policy for ``hosts`` with the limits of the ``TAKEDOWN_FETCH_*`` settings."""
        networks = parse_networks("TAKEDOWN_FETCH_ALLOW_NETWORKS",
                                  [str(network) for network in settings.TAKEDOWN_FETCH_ALLOW_NETWORKS])
        return cls(
            hosts=tuple(hosts),
            allow_networks=tuple(networks),
            max_bytes=settings.TAKEDOWN_FETCH_MAX_BYTES,
            connect_seconds=float(settings.TAKEDOWN_FETCH_CONNECT_SECONDS),
            first_byte_seconds=float(settings.TAKEDOWN_FETCH_FIRST_BYTE_SECONDS),
            total_seconds=float(settings.TAKEDOWN_FETCH_TOTAL_SECONDS),
            attempts=settings.TAKEDOWN_FETCH_ATTEMPTS,
        )

    def allows_host(self, host: str) -> bool:
        """Whether ``host`` (a name or an IP address, as in a URL) matches one of ``hosts``."""
        host = _normal_host(host)
        literal = _ip_or_none(host)
        for pattern in self.hosts:
            if literal is not None:
                if _ip_or_none(pattern) == literal:
                    return True
            elif pattern.startswith("*."):
                if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                    return True
            elif host == pattern:
                return True
        return False

    def allows_address(self, address: IPAddress) -> bool:
        """Whether Takedown may connect to ``address``: a public address, or one in ``allow_networks``."""
        # An IPv4 address written as IPv6 (::ffff:10.0.0.1, or 6to4's 2002::/16) is judged as what it carries.
        inner = (address.ipv4_mapped or address.sixtofour) if isinstance(address, ipaddress.IPv6Address) else None
        if inner is not None:
            return self.allows_address(inner)
        if any(address.version == network.version and address in network for network in self.allow_networks):
            return True
        special = (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
                   or address.is_reserved or address.is_unspecified or not address.is_global
                   or (address.version == 4 and address in SHARED_NETWORK))
        return not special


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _ip_or_none(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _host_pattern(pattern: str) -> str:
    normal = _normal_host(pattern)
    body = normal[2:] if normal.startswith("*.") else normal
    if not body or "*" in body or "/" in body or (":" in body and _ip_or_none(body) is None):
        raise ValueError(f"{pattern!r} is not a host pattern: write a host name (cdn.example), a wildcard for "
                         "the hosts below a domain (*.example.com) or an IP address.")
    if normal.startswith("*.") and "." not in body:
        raise ValueError(f"{pattern!r} would allow every host below a top-level domain; name the platform's "
                         "own domain (*.example.com).")
    return normal


def spool_dir() -> Path:
    """The private folder downloads stream to (``TAKEDOWN_FETCH_SPOOL_DIR``; created 0700, never served)."""
    path = Path(settings.TAKEDOWN_FETCH_SPOOL_DIR)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


# --- Types from bytes -----------------------------------------------------------------------------------

# ISO-BMFF (ftyp) brands of still images; every other brand is a video (MP4, QuickTime, 3GP).
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})  # the brand's compatible brands say which
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def sniff(head: bytes) -> str | None:
    """The MIME type of an image or video Takedown accepts, from its first bytes; None for anything else.

    The types are those media storage names (``moderation.services.media._EXTENSIONS``): HEIF stills are
    ``image/heic``, as ``hashing.decode`` reports them.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"BM") and len(head) >= 18 and head[6:10] == b"\x00\x00\x00\x00" \
            and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "image/bmp"
    if head[4:8] == b"ftyp" and len(head) >= 12:
        return _iso_bmff_type(head)
    if head[4:8] in (b"moov", b"mdat", b"wide"):  # QuickTime files written before the ftyp box existed
        return "video/quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, or WebM (a Matroska DocType of "webm")
        return "video/webm" if b"webm" in head[:SNIFF_BYTES] else "video/x-matroska"
    return None


def _iso_bmff_type(head: bytes) -> str:
    major = head[8:12].lower()
    box_end = min(int.from_bytes(head[0:4], "big"), len(head))
    compatible = {head[i:i + 4].lower() for i in range(16, box_end - 3, 4)}
    if major in _AVIF_BRANDS or (major in _HEIF_GENERIC_BRANDS and compatible & _AVIF_BRANDS):
        return "image/avif"
    if major in _HEIC_BRANDS or major in _HEIF_GENERIC_BRANDS:
        return "image/heic"
    if major == b"qt  ":
        return "video/quicktime"
    if major.startswith(b"3g"):
        return "video/3gpp"
    return "video/mp4"


def _looks_like(head: bytes) -> str:
    """What bytes that are not media seem to be, for the moderator (a guess, from the first bytes)."""
    if not head:
        return "the answer was empty"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text:
        return "it looks like a web page (HTML)"
    if b"<svg" in text:
        return "it looks like an SVG drawing, which Takedown does not accept"
    if text.startswith(b"<?xml"):
        return "it looks like XML"
    if text.startswith((b"{", b"[")):
        return "it looks like JSON"
    if text.startswith(b"%pdf"):
        return "it looks like a PDF document"
    if text.startswith((b"pk\x03\x04", b"\x1f\x8b")):
        return "it looks like an archive (ZIP or gzip)"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        return "its type is not one Takedown knows"
    if all(char.isprintable() or char.isspace() for char in decoded):
        return "it looks like text"
    return "its type is not one Takedown knows"


# --- Pinned connections ---------------------------------------------------------------------------------

class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the addresses checked for each host name (``pins``; each in turn until one answers), never
    resolving names itself, and keeps every socket operation within ``deadline`` (a ``time.monotonic()``
    value; the fetch sets it)."""

    def __init__(self, pins: Mapping[str, list[str]]) -> None:
        self._inner = httpcore.SyncBackend()
        self._pins = pins
        self.deadline = math.inf

    def remaining(self, timeout: float | None, late: type[Exception]) -> float | None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise late("the time for this download is up")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        addresses = self._pins.get(_normal_host(host))
        if not addresses:  # the fetcher checks and pins every host before it sends a request there
            raise RuntimeError(f"no checked address for {host!r}: refusing to resolve it here")
        options = list(socket_options or ())
        for index, address in enumerate(addresses):
            try:
                stream = self._inner.connect_tcp(address, port, self.remaining(timeout, httpcore.ConnectTimeout),
                                                 local_address, options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                if index == len(addresses) - 1:
                    raise
                continue
            return _DeadlineStream(stream, self)
        raise AssertionError("unreachable")  # the loop returns or raises

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
                            ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("the safe fetcher connects over TCP only")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, backend: _PinnedBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        # server_hostname is the URL's host name: the certificate is checked against the name, not the address.
        inner = self._inner.start_tls(ssl_context, server_hostname,
                                      self._backend.remaining(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose network backend is :class:`_PinnedBackend`."""

    def __init__(self, backend: _PinnedBackend) -> None:
        context = _ssl_context()
        super().__init__(verify=context, trust_env=False)
        self._pool.close()
        # httpx's transport takes no network backend; its pool is replaced by one that has ours (httpcore's
        # documented way to control how connections are made).
        self._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=backend, max_connections=4)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verification (the certifi bundle), loaded once per process and shared by every fetch."""
    return httpx.create_ssl_context(trust_env=False)


# --- The fetcher ----------------------------------------------------------------------------------------

@dataclass
class _Fetch:
    """One ``download`` or ``call_json``: its client and the addresses pinned for it (each host resolved once)."""

    client: httpx.Client
    backend: _PinnedBackend
    pins: dict[str, list[str]] = field(default_factory=dict)


class SafeFetcher:
    """Downloads under a :class:`FetchPolicy`. ``purpose`` names the caller in the User-Agent and in logs
    (``"platform http"``). ``resolver(host, port)`` returns the host's addresses (default:
    ``socket.getaddrinfo``); ``sleep`` waits between tries (tests pass one that records)."""

    def __init__(self, policy: FetchPolicy, *, purpose: str, resolver: Resolver | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy
        self.purpose = purpose
        self.resolver = resolver or system_resolve
        self.sleep = sleep
        self.retry = Retry(attempts=policy.attempts, wait_initial=WAIT_INITIAL_SECONDS, wait_max=WAIT_MAX_SECONDS,
                           retry_after_max=RETRY_AFTER_MAX_SECONDS)

    @property
    def user_agent(self) -> str:
        return f"Takedown/{VERSION} ({self.purpose})"

    def download(self, url: str, *, location: str, headers: Mapping[str, str] | None = None, uploader: str = "",
                 posted_at: datetime | None = None) -> FetchedMedia:
        """GET ``url`` (following allowed redirects) into a new private file in :func:`spool_dir`.

        Returns the :class:`FetchedMedia` (the caller owns the file); raises the refusals above,
        ``ContentNotFound``/``ContentGone``, ``PlatformError`` or ``PlatformRefused``.
        """
        sent = {"Accept-Encoding": "identity", **(headers or {})}
        with self._fetch() as fetch:
            path, size, mime, final = self._retrying(url, lambda: self._download_once(fetch, url, sent))
        return FetchedMedia(path=path, content_type=mime, size=size, location=location, uploader=uploader,
                            posted_at=posted_at, source_url=where(final))

    def call_json(self, method: str, url: str, *, body: bytes | None = None,
                  headers: Mapping[str, str] | None = None, max_bytes: int = JSON_MAX_BYTES) -> Any:
        """Send one API request under the same rules (no redirects followed) and return its JSON answer."""
        sent = {"Accept": "application/json", **(headers or {})}
        with self._fetch() as fetch:
            data = self._retrying(url, lambda: self._call_once(fetch, method, url, body, sent, max_bytes))
        try:
            return json.loads(data)
        except ValueError:
            detail = " ".join(data[:DETAIL_CHARS * 4].decode("utf-8", "replace").split())[:DETAIL_CHARS]
            raise PlatformRefused(f"{method} {where(url)} answered something that is not JSON"
                                  + (f": {detail}" if detail else " (an empty answer)")) from None

    # --- one fetch ---

    @contextlib.contextmanager
    def _fetch(self) -> Iterator[_Fetch]:
        pins: dict[str, list[str]] = {}
        backend = _PinnedBackend(pins)
        timeout = httpx.Timeout(self.policy.first_byte_seconds, connect=self.policy.connect_seconds,
                                pool=self.policy.connect_seconds)
        with httpx.Client(transport=_PinnedTransport(backend), timeout=timeout, follow_redirects=False,
                          trust_env=False, headers={"User-Agent": self.user_agent}) as client:
            yield _Fetch(client=client, backend=backend, pins=pins)

    def _retrying(self, url: str, attempt: Callable[[], Any]) -> Any:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=lambda state: self.retry.wait(state.attempt_number, _error_of(state)),
            retry=tenacity.retry_if_exception_type(Transient),
            sleep=self.sleep,
            before_sleep=lambda state: logger.warning(
                "%s: fetching %s failed (%s); try %d of %d, next in %.1f s", self.purpose, where(url),
                _error_of(state), state.attempt_number, self.retry.attempts,
                state.next_action.sleep if state.next_action is not None else 0.0),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except Transient as exc:
            tries = self.retry.attempts
            times = "once" if tries == 1 else f"{tries} times"
            raise PlatformError(f"{where(url)} could not be fetched ({_transient_reason(exc)}); tried {times}.") \
                from exc

    def _check(self, fetch: _Fetch, url: str, *, redirected_from: str = "") -> tuple[str, str]:
        """Refuse ``url`` unless its scheme, host and addresses are allowed; pin the host. (where, host)."""
        place = where(url)
        try:
            parsed = httpx.URL(url)
            host = _normal_host(parsed.raw_host.decode("ascii"))
        except (httpx.InvalidURL, UnicodeDecodeError):
            raise HostNotAllowed(f"{place!r} is not a link Takedown can fetch.", url=place) from None
        if parsed.scheme not in ("http", "https") or not host:
            if redirected_from:
                raise RedirectNotAllowed(f"{redirected_from} redirected to {place!r}, which is not an http(s) "
                                         "link.", url=place)
            raise HostNotAllowed(f"{place!r} is not an http(s) link, which is all Takedown fetches.", url=place)
        if not self.policy.allows_host(host):
            if redirected_from:
                raise RedirectNotAllowed(f"{redirected_from} redirected to {host}, which is not one of the hosts "
                                         "the platform's content may come from.", url=place)
            raise HostNotAllowed(f"{host} is not one of the hosts the platform's content may come from.",
                                 url=place)
        if host not in fetch.pins:
            fetch.pins[host] = self._checked_addresses(
                host, parsed.port or (443 if parsed.scheme == "https" else 80), place)
        return place, host

    def _checked_addresses(self, host: str, port: int, place: str) -> list[str]:
        """The host's addresses, every one of them allowed (else a refusal); an IP address is its own."""
        literal = _ip_or_none(host)
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                found = list(dict.fromkeys(self.resolver(host, port)))
            except socket.gaierror as exc:
                if exc.errno == socket.EAI_AGAIN:
                    raise Unreachable(f"{host} could not be looked up now ({exc})", url=place,
                                      reason=f"the name {host} could not be looked up") from exc
                raise ContentUnfetchable(f"the host {host} does not exist (DNS: {exc.strerror or exc}).",
                                         url=place) from exc
            except OSError as exc:
                raise Unreachable(f"{host} could not be looked up ({exc})", url=place,
                                  reason=f"the name {host} could not be looked up") from exc
        if not found:
            raise ContentUnfetchable(f"the host {host} has no address.", url=place)
        for text in found:
            address = _ip_or_none(text)
            if address is None or not self.policy.allows_address(address):
                said = host if literal is not None else f"{host} resolves to {text}, which"
                raise AddressNotAllowed(f"{said} is a private or reserved address that Takedown does not "
                                        "connect to.", url=place)
        return found

    def _download_once(self, fetch: _Fetch, url: str, headers: Mapping[str, str]) -> tuple[Path, int, str, str]:
        fetch.backend.deadline = time.monotonic() + self.policy.total_seconds
        current, redirected_from = url, ""
        for _hop in range(self.policy.max_redirects + 1):
            place, _host = self._check(fetch, current, redirected_from=redirected_from)
            with self._exchange(fetch, "GET", current, headers=headers) as answer:
                if answer.status_code in REDIRECT_STATUSES:
                    target = answer.headers.get("location", "")
                    if not target:
                        raise PlatformRefused(f"{place} answered a redirect (HTTP {answer.status_code}) without "
                                              "saying where to.")
                    following = str(answer.url.join(target))
                    if _origin(following) != _origin(current):
                        headers = {"Accept-Encoding": "identity"}  # the caller's headers are for its own host
                    current, redirected_from = following, place
                    continue
                self._refuse_status(answer, "GET", place)
                path, size, mime = self._spool(fetch, answer, place)
                return path, size, mime, current
        raise ContentUnfetchable(f"{where(url)} redirected more than {self.policy.max_redirects} times.",
                                 url=where(url))

    def _call_once(self, fetch: _Fetch, method: str, url: str, body: bytes | None, headers: Mapping[str, str],
                   max_bytes: int) -> bytes:
        fetch.backend.deadline = time.monotonic() + self.policy.total_seconds
        place, _host = self._check(fetch, url)
        with self._exchange(fetch, method, url, headers=headers, content=body) as answer:
            if 300 <= answer.status_code < 400:
                target = answer.headers.get("location", "")
                said = f"to {where(str(answer.url.join(target)))}" if target else "without saying where to"
                raise PlatformRefused(f"{method} {place} answered a redirect (HTTP {answer.status_code}) {said}; "
                                      "Takedown does not follow redirects from the platform's API.")
            self._refuse_status(answer, method, place)
            declared = answer.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise PlatformRefused(f"{method} {place} answered {_megabytes(int(declared))}, more than the "
                                      f"{_megabytes(max_bytes)} Takedown accepts from the platform's API.")
            chunks: list[bytes] = []
            size = 0
            for chunk in self._chunks(fetch, answer, place):
                size += len(chunk)
                if size > max_bytes:
                    raise PlatformRefused(f"{method} {place} answered more than the {_megabytes(max_bytes)} "
                                          "Takedown accepts from the platform's API.")
                chunks.append(chunk)
            return b"".join(chunks)

    @contextlib.contextmanager
    def _exchange(self, fetch: _Fetch, method: str, url: str, *, headers: Mapping[str, str],
                  content: bytes | None = None) -> Iterator[httpx.Response]:
        """Send the request; connection failures and answers that do not start in time become transient."""
        place = where(url)
        try:
            with fetch.client.stream(method, url, headers=dict(headers), content=content) as answer:
                yield answer
        except httpx.TimeoutException as exc:
            raise self._timed_out(fetch, place, exc) from exc
        except httpx.HTTPError as exc:
            reason = f"the connection failed: {exc or type(exc).__name__}"
            raise Unreachable(f"{place}: {reason}", url=place, reason=reason) from exc

    def _timed_out(self, fetch: _Fetch, place: str, exc: httpx.TimeoutException, *, body: bool = False) -> Exception:
        if time.monotonic() >= fetch.backend.deadline:
            return TooSlow(f"the download took longer than the {self.policy.total_seconds:g} s Takedown allows.",
                           url=place)
        if isinstance(exc, httpx.ConnectTimeout):
            reason = f"no connection within {self.policy.connect_seconds:g} s"
        elif body:
            reason = f"the platform stopped sending for {self.policy.first_byte_seconds:g} s"
        else:
            reason = f"no answer within {self.policy.first_byte_seconds:g} s"
        return Unreachable(f"{place}: {reason}", url=place, reason=reason)

    def _chunks(self, fetch: _Fetch, answer: httpx.Response, place: str) -> Iterator[bytes]:
        """The body as it arrives, within the attempt's deadline (a read timeout mid-body is transient)."""
        try:
            for chunk in answer.iter_bytes():
                yield chunk
                if time.monotonic() > fetch.backend.deadline:
                    raise TooSlow(f"the download took longer than the {self.policy.total_seconds:g} s Takedown "
                                  "allows.", url=place)
        except httpx.TimeoutException as exc:
            raise self._timed_out(fetch, place, exc, body=True) from exc
        except httpx.HTTPError as exc:
            reason = f"the connection broke: {exc or type(exc).__name__}"
            raise Unreachable(f"{place}: {reason}", url=place, reason=reason) from exc

    def _refuse_status(self, answer: httpx.Response, method: str, place: str) -> None:
        status = answer.status_code
        if 200 <= status < 300:
            return
        said = f"{method} {place} answered HTTP {status}"
        if status == 410:
            raise ContentGone(f"{said}: the platform says this content has been removed.")
        if status == 404:
            raise ContentNotFound(f"{said}: the platform has no content there.")
        response = Response(status=status, headers={k.lower(): v for k, v in answer.headers.items()}, body=b"",
                            url=place)
        if status >= 500:
            raise ServerError(said, response=response)
        if status in (408, 429):
            raise Throttled(said, response=response)
        start = self._start_of(answer)
        detail = response_detail(Response(status=status, headers={}, body=start, url=place))
        raise PlatformRefused(f"the platform refused (HTTP {status}{': ' + detail if detail else ''}); {said}.",
                              status=status, body=start)

    @staticmethod
    def _start_of(answer: httpx.Response) -> bytes:
        """The first few hundred bytes of a refusal's body (the platform's reason), or none if it cannot be read."""
        start = b""
        try:
            for chunk in answer.iter_bytes():
                start += chunk
                if len(start) >= DETAIL_CHARS * 4:
                    break
        except httpx.HTTPError:
            pass
        return start[:DETAIL_CHARS * 4]

    def _spool(self, fetch: _Fetch, answer: httpx.Response, place: str) -> tuple[Path, int, str]:
        """Stream the body into a new private file: (path, size, sniffed type). The file is gone on failure."""
        limit = self.policy.max_bytes
        declared = answer.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise TooLarge(_too_large(int(declared), limit), url=place)
        handle, name = tempfile.mkstemp(prefix="fetch-", dir=spool_dir())  # 0600, a new name every time
        path = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                size, mime = self._write_body(fetch, answer, place, out)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise
        return path, size, mime

    def _write_body(self, fetch: _Fetch, answer: httpx.Response, place: str, out: IO[bytes]) -> tuple[int, str]:
        limit = self.policy.max_bytes
        head = b""
        mime: str | None = None
        size = 0
        for chunk in self._chunks(fetch, answer, place):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the file is larger than the {_megabytes(limit)} Takedown accepts; the rest was "
                               "not read.", url=place)
            if mime is None:
                head += chunk
                if len(head) < SNIFF_BYTES:
                    continue
                mime = self._sniffed(head, answer, place)
                chunk, head = head, b""
            out.write(chunk)
        if mime is None:  # the whole file is shorter than SNIFF_BYTES
            mime = self._sniffed(head, answer, place)
            out.write(head)
        return size, mime

    @staticmethod
    def _sniffed(head: bytes, answer: httpx.Response, place: str) -> str:
        mime = sniff(head)
        if mime is not None:
            return mime
        claimed = answer.headers.get("content-type", "").split(";")[0].strip()[:80]
        label = f" (the platform labelled it {claimed})" if claimed else ""
        raise NotMedia(f"the download is not an image or video: {_looks_like(head)}{label}.", url=place)


def system_resolve(host: str, port: int) -> list[str]:
    """The host's addresses, from the system resolver (``getaddrinfo``), in its order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, _normal_host(parsed.host), parsed.port


def _error_of(state: tenacity.RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None


def _transient_reason(exc: Transient) -> str:
    if isinstance(exc, Throttled):
        return f"HTTP {exc.status}, asked to come back later"
    if isinstance(exc, ServerError):
        return f"HTTP {exc.status}, a server error"
    if isinstance(exc, Unreachable):
        return exc.reason
    return str(exc)


def _megabytes(size: int) -> str:
    """Bytes for people: ``2048 MB``, ``0.25 MB`` (binary megabytes, as the settings count them)."""
    value = size / MIB
    return f"{value:.0f} MB" if value >= 10 else f"{value:.3g} MB"


def _too_large(size: int, limit: int) -> str:
    return f"the file is {_megabytes(size)}, more than the {_megabytes(limit)} Takedown accepts."
