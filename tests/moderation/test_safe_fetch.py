"""The safe fetcher (moderation/platforms/fetch.py) against a real HTTP server on loopback: what it accepts,
what it refuses and when, what it retries (waits recorded, not slept), and where it connects."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from moderation.platforms import fetch as fetch_module
from moderation.platforms.base import (
    ContentGone,
    ContentNotFound,
    ContentUnfetchable,
    PlatformError,
    PlatformRefused,
)
from moderation.platforms.fetch import (
    AddressNotAllowed,
    FetchPolicy,
    HostNotAllowed,
    NotMedia,
    RedirectNotAllowed,
    SafeFetcher,
    TooLarge,
    TooSlow,
    sniff,
    spool_dir,
)
from moderation.services.media import _EXTENSIONS
from tests.conftest import make_image_bytes
from tests.moderation.legal_helpers import serving

ROOT = Path(__file__).resolve().parents[2]
JPEG = make_image_bytes(seed=7)
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
HTML = b"<!DOCTYPE html><html><head><title>Log in</title></head><body>Please log in</body></html>"


# --- The server -----------------------------------------------------------------------------------------

class Seen:
    """Requests the server received: (method, path with query, headers in lower case, body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests.append((method, path, headers, body))
            route = urlsplit(path).path
            self.counts[route] = self.counts.get(route, 0) + 1
            return self.counts[route]

    def paths(self) -> list[str]:
        return [urlsplit(path).path for _method, path, _headers, _body in self.requests]


SEEN = Seen()


class Platform(BaseHTTPRequestHandler):
    """Routes: each answers as its name says. ``n`` is how often this path was asked for (1 the first time)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.route()

    def do_POST(self) -> None:
        self.route()

    def route(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        n = SEEN.add(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route = parts.path.split("/")[1]
        getattr(self, "answer_" + route.replace("-", "_"))(n, query, parts.path)

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the fetcher hung up (a refused body, a closed keep-alive connection), as it may

    def send(self, status: int, body: bytes, content_type: str = "image/jpeg", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def answer_jpeg(self, n: int, query: dict[str, str], path: str) -> None:
        self.send(200, JPEG)

    def answer_jpeg_as_html(self, n: int, query: dict[str, str], path: str) -> None:
        self.send(200, JPEG, "text/html; charset=utf-8")

    def answer_html_as_jpeg(self, n: int, query: dict[str, str], path: str) -> None:
        self.send(200, HTML, "image/jpeg")

    def answer_status(self, n: int, query: dict[str, str], path: str) -> None:
        self.send(int(path.split("/")[2]), b"Forbidden: this media needs a signed link", "text/plain")

    def answer_flaky(self, n: int, query: dict[str, str], path: str) -> None:
        if n == 1:
            self.send(500, b"oops", "text/plain")
        else:
            self.send(200, JPEG)

    def answer_throttled(self, n: int, query: dict[str, str], path: str) -> None:
        if n == 1:
            self.send(429, b"slow down", "text/plain", Retry_After="2")
        else:
            self.send(200, JPEG)

    def answer_slow(self, n: int, query: dict[str, str], path: str) -> None:
        time.sleep(float(query.get("seconds", "1")))
        self.send(200, JPEG)

    def answer_endless(self, n: int, query: dict[str, str], path: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Connection", "close")  # no length: the body runs until the connection closes
        self.end_headers()
        self.wfile.write(JPEG[:1024])
        for _ in range(4096):  # 256 MiB at most, should the fetcher not hang up
            self.wfile.write(b"\0" * 65536)

    def answer_drip(self, n: int, query: dict[str, str], path: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(JPEG)))
        self.end_headers()
        self.wfile.write(JPEG[:100])
        for index in range(100, min(len(JPEG), 400)):
            time.sleep(0.05)
            self.wfile.write(JPEG[index:index + 1])

    def answer_huge(self, n: int, query: dict[str, str], path: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(2 * 1024 ** 3))
        self.end_headers()
        self.wfile.write(JPEG[:1024])
        for _ in range(1024):
            self.wfile.write(b"\0" * 65536)

    def answer_redirect(self, n: int, query: dict[str, str], path: str) -> None:
        self.send(int(query.get("status", "302")), b"", "text/plain", Location=query["to"])

    def answer_loop(self, n: int, query: dict[str, str], path: str) -> None:
        self.send(302, b"", "text/plain", Location=f"/loop/{int(path.split('/')[2]) + 1}")

    def answer_json(self, n: int, query: dict[str, str], path: str) -> None:
        self.send(200, json.dumps({"items": [{"url": "https://cdn.example/1.jpg"}]}).encode(), "application/json")

    def answer_big_json(self, n: int, query: dict[str, str], path: str) -> None:
        self.send(200, json.dumps({"pad": "x" * 5000}).encode(), "application/json")

    def answer_not_json(self, n: int, query: dict[str, str], path: str) -> None:
        self.send(200, HTML, "application/json")


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serving(Platform) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh(settings: Any, tmp_path: Path) -> Path:
    """Each test: its own spool folder (TAKEDOWN_FETCH_SPOOL_DIR) and an empty record of requests."""
    SEEN.requests.clear()
    SEEN.counts.clear()
    settings.TAKEDOWN_FETCH_SPOOL_DIR = tmp_path / "spool"
    return tmp_path / "spool"


def spooled() -> list[Path]:
    return sorted(spool_dir().iterdir())


class Waits(list[float]):
    """A ``sleep`` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fetcher(hosts: tuple[str, ...] = ("127.0.0.1",), *, networks: tuple[Any, ...] = LOOPBACK,
            resolver: Callable[[str, int], list[str]] | None = None, waits: Waits | None = None,
            **limits: Any) -> SafeFetcher:
    policy = FetchPolicy(hosts=hosts, allow_networks=networks, **limits)
    return SafeFetcher(policy, purpose="test", resolver=resolver, sleep=waits if waits is not None else Waits())


class Resolver:
    """A resolver with fixed answers per name (a list of answers: one per call, the last repeated); it
    records every call."""

    def __init__(self, **answers: list[str] | list[list[str]]) -> None:
        self.answers = {name.replace("_", "."): value for name, value in answers.items()}
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answer = self.answers[host]
        if answer and isinstance(answer[0], list):
            return list(answer[min(self.calls.count(host), len(answer)) - 1])
        return list(answer)  # type: ignore[arg-type]


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


# --- Downloads that succeed -----------------------------------------------------------------------------

def test_a_jpeg_is_streamed_to_a_private_file_in_the_spool_folder(base: str, _fresh: Path) -> None:
    posted = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    media = fetcher().download(f"{base}/jpeg?sig=secret-token", location="https://platform.example/p/1",
                               uploader="user-1", posted_at=posted)
    assert media.content_type == "image/jpeg"
    assert media.size == len(JPEG)
    assert media.path.parent == _fresh
    assert media.path.read_bytes() == JPEG
    assert stat.S_IMODE(media.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(_fresh.stat().st_mode) == 0o700
    assert (media.location, media.uploader, media.posted_at) == ("https://platform.example/p/1", "user-1", posted)
    assert media.source_url == f"{base}/jpeg"  # no query string: signed links' secrets stay out of the audit
    user_agent = SEEN.requests[0][2]["user-agent"]
    assert user_agent.startswith("Takedown/") and user_agent.endswith(" (test)")
    media.discard()
    assert spooled() == []


def test_a_jpeg_labelled_text_html_is_accepted_as_a_jpeg(base: str) -> None:
    media = fetcher().download(f"{base}/jpeg-as-html", location="x")
    assert media.content_type == "image/jpeg"
    assert media.path.read_bytes() == JPEG


def test_html_labelled_as_a_jpeg_is_refused_as_not_media_and_nothing_is_kept(base: str) -> None:
    with pytest.raises(NotMedia) as refused:
        fetcher().download(f"{base}/html-as-jpeg", location="x")
    assert "HTML" in refused.value.reason
    assert "image/jpeg" in refused.value.reason  # what the platform claimed
    assert refused.value.url == f"{base}/html-as-jpeg"
    assert spooled() == []


def test_a_redirect_within_the_policy_is_followed_and_the_source_is_the_final_url(base: str) -> None:
    media = fetcher().download(f"{base}/redirect?to=/jpeg&status=307", location="x")
    assert media.content_type == "image/jpeg"
    assert media.source_url == f"{base}/jpeg"
    assert SEEN.paths() == ["/redirect", "/jpeg"]


# --- Answers: not found, gone, refused, retried ---------------------------------------------------------

def test_404_is_content_not_found_and_410_is_content_gone(base: str) -> None:
    with pytest.raises(ContentNotFound) as missing:
        fetcher().download(f"{base}/status/404", location="x")
    assert not isinstance(missing.value, ContentGone)
    with pytest.raises(ContentGone):
        fetcher().download(f"{base}/status/410", location="x")
    assert SEEN.paths() == ["/status/404", "/status/410"]  # neither was retried
    assert spooled() == []


def test_a_500_then_a_200_succeeds_after_one_recorded_wait(base: str) -> None:
    waits = Waits()
    media = fetcher(waits=waits).download(f"{base}/flaky", location="x")
    assert media.size == len(JPEG)
    assert len(waits) == 1
    assert 0.25 <= waits[0] <= 0.5  # the first wait (0.5 s), less up to half of it as jitter
    assert spooled() == [media.path]  # the failed try left nothing behind


def test_a_429_with_retry_after_waits_as_long_as_the_platform_asks(base: str) -> None:
    waits = Waits()
    fetcher(waits=waits).download(f"{base}/throttled", location="x")
    assert waits == [2.0]


def test_a_500_every_time_is_a_platform_error_after_every_attempt(base: str) -> None:
    waits = Waits()
    with pytest.raises(PlatformError) as failed:
        fetcher(waits=waits, attempts=3).download(f"{base}/status/503", location="x")
    assert SEEN.paths() == ["/status/503"] * 3
    assert len(waits) == 2
    assert "HTTP 503" in str(failed.value) and "3 times" in str(failed.value)


def test_a_403_is_refused_at_once_naming_the_status(base: str) -> None:
    waits = Waits()
    with pytest.raises(PlatformRefused) as refused:
        fetcher(waits=waits).download(f"{base}/status/403", location="x")
    assert "HTTP 403" in str(refused.value)
    assert "needs a signed link" in str(refused.value)  # the platform's own reason
    assert not isinstance(refused.value, PlatformError)
    assert waits == [] and len(SEEN.requests) == 1


def test_an_answer_that_does_not_start_in_time_is_retried_then_a_platform_error(base: str) -> None:
    waits = Waits()
    with pytest.raises(PlatformError) as failed:
        fetcher(waits=waits, attempts=2, first_byte_seconds=0.2).download(f"{base}/slow?seconds=1", location="x")
    assert "no answer within 0.2 s" in str(failed.value)
    assert len(waits) == 1 and SEEN.paths() == ["/slow", "/slow"]


def test_a_refused_connection_is_a_platform_error(base: str) -> None:
    closed = Resolver(platform_test=["127.0.0.1"])
    # Port 9 (discard) on loopback: nothing listens there in a test environment.
    with pytest.raises(PlatformError, match="connection failed"):
        fetcher(("platform.test",), resolver=closed, attempts=2).download("http://platform.test:9/x", location="x")
    assert closed.calls == ["platform.test"]  # resolved once for both tries


def _certificate_for(name: str, folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for ``name`` signed by it: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def build(subject: str, key: Any, issuer: str, signer: Any, *, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(hours=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False,
                decipher_only=False), critical=True)
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(build("Test CA", ca_key, "Test CA", ca_key, ca=True).public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(build(name, key, "Test CA", ca_key, ca=False).public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_https_goes_to_the_checked_address_and_verifies_the_certificate_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca, cert, key = _certificate_for("platform.test", tmp_path)
    trusted = ssl.create_default_context(cafile=str(ca))  # in place of the public CAs a real platform uses
    monkeypatch.setattr(fetch_module, "_ssl_context", lambda: trusted)
    serving_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving_context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Platform)
    server.daemon_threads = True
    server.socket = serving_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        names = Resolver(platform_test=["127.0.0.1"], other_test=["127.0.0.1"])
        media = fetcher(("platform.test", "other.test"), resolver=names).download(
            f"https://platform.test:{port}/jpeg", location="x")
        assert media.content_type == "image/jpeg" and media.source_url == f"https://platform.test:{port}/jpeg"
        # The same address under a name the certificate does not carry: the TLS check fails, as it must.
        with pytest.raises(PlatformError, match="certificate"):
            fetcher(("platform.test", "other.test"), resolver=names, attempts=1).download(
                f"https://other.test:{port}/jpeg", location="x")
        assert SEEN.paths() == ["/jpeg"]
    finally:
        server.shutdown()
        server.server_close()


# --- Limits: size and time ------------------------------------------------------------------------------

def test_an_endless_body_stops_at_the_size_limit_and_leaves_no_file(base: str) -> None:
    with pytest.raises(TooLarge) as refused:
        fetcher(max_bytes=256 * 1024).download(f"{base}/endless", location="x")
    assert "0.25 MB" in refused.value.reason
    assert spooled() == []


def test_a_content_length_of_2_gb_is_refused_before_the_body_is_read(base: str) -> None:
    with pytest.raises(TooLarge) as refused:
        fetcher().download(f"{base}/huge", location="x")
    assert refused.value.reason == "the file is 2048 MB, more than the 200 MB Takedown accepts."
    assert spooled() == []


def test_a_drip_fed_body_stops_at_the_total_time_limit_and_leaves_no_file(base: str) -> None:
    waits = Waits()
    with pytest.raises(TooSlow) as refused:
        fetcher(waits=waits, total_seconds=0.5, first_byte_seconds=2).download(f"{base}/drip", location="x")
    assert "0.5 s" in refused.value.reason
    assert waits == []  # a slow body is not retried
    assert spooled() == []


# --- Where the fetcher may go ---------------------------------------------------------------------------

def test_a_host_outside_the_policy_is_refused_before_any_request(base: str) -> None:
    with pytest.raises(HostNotAllowed, match=r"127\.0\.0\.1") as refused:
        fetcher(("platform.test",)).download(f"{base}/jpeg", location="x")
    assert isinstance(refused.value, ContentUnfetchable)
    assert SEEN.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x.jpg", "gopher://127.0.0.1/x"])
def test_links_that_are_not_http_are_refused(url: str) -> None:
    with pytest.raises(HostNotAllowed, match="http"):
        fetcher().download(url, location="x")


def test_a_redirect_to_a_host_outside_the_policy_is_refused_naming_it(base: str) -> None:
    names = Resolver(platform_test=["127.0.0.1"], elsewhere_test=["127.0.0.1"])
    start = f"http://platform.test:{port_of(base)}/redirect?to=http://elsewhere.test/x.jpg"
    with pytest.raises(RedirectNotAllowed, match=r"elsewhere\.test"):
        fetcher(("platform.test",), resolver=names).download(start, location="x")
    assert names.calls == ["platform.test"]
    assert SEEN.paths() == ["/redirect"]


def test_a_redirect_to_an_allowed_name_with_a_private_address_is_refused(base: str) -> None:
    names = Resolver(start_test=["127.0.0.1"], platform_test=["127.0.0.2"])
    port = port_of(base)
    start = f"http://start.test:{port}/redirect?to=http://platform.test:{port}/jpeg"
    only_one = (ipaddress.ip_network("127.0.0.1/32"),)
    with pytest.raises(AddressNotAllowed) as refused:
        fetcher(("start.test", "platform.test"), resolver=names, networks=only_one).download(start, location="x")
    assert "platform.test" in refused.value.reason and "127.0.0.2" in refused.value.reason
    assert SEEN.paths() == ["/redirect"]


def test_too_many_redirects_are_refused(base: str) -> None:
    with pytest.raises(ContentUnfetchable, match="more than 2 times"):
        fetcher(max_redirects=2).download(f"{base}/loop/0", location="x")
    assert SEEN.paths() == ["/loop/0", "/loop/1", "/loop/2"]


def test_a_name_that_resolves_to_a_private_address_is_refused_before_connecting(base: str) -> None:
    names = Resolver(platform_test=["127.0.0.1"])
    with pytest.raises(AddressNotAllowed, match=r"platform\.test resolves to 127\.0\.0\.1"):
        fetcher(("platform.test",), resolver=names, networks=()).download(
            f"http://platform.test:{port_of(base)}/jpeg", location="x")
    assert SEEN.requests == []


def test_one_private_address_among_public_ones_is_enough_to_refuse(base: str) -> None:
    names = Resolver(platform_test=["93.184.216.34", "10.0.0.7"])
    with pytest.raises(AddressNotAllowed, match=r"10\.0\.0\.7"):
        fetcher(("platform.test",), resolver=names, networks=()).download("https://platform.test/a.jpg",
                                                                          location="x")


def test_the_connection_goes_to_the_checked_address_and_the_name_is_resolved_once(base: str) -> None:
    # A rebinding resolver: the checked answer is loopback (allowed here); a second lookup would answer an
    # address the policy refuses. Both hops and the retry use the first answer, and the name still reaches
    # the server in the Host header.
    names = Resolver(platform_test=[["127.0.0.1"], ["10.0.0.1"]])
    port = port_of(base)
    media = fetcher(("platform.test",), resolver=names).download(
        f"http://platform.test:{port}/redirect?to=/flaky", location="x")
    assert media.content_type == "image/jpeg"
    assert names.calls == ["platform.test"]
    assert SEEN.paths() == ["/redirect", "/flaky", "/redirect", "/flaky"]
    assert {headers["host"] for _m, _p, headers, _b in SEEN.requests} == {f"platform.test:{port}"}


def test_the_system_resolver_is_used_when_none_is_given(base: str) -> None:
    loopback = (*LOOPBACK, ipaddress.ip_network("::1/128"))
    media = fetcher(("localhost",), networks=loopback).download(f"http://localhost:{port_of(base)}/jpeg",
                                                                 location="x")
    assert media.size == len(JPEG)


def test_each_checked_address_is_tried_in_turn_until_one_answers(base: str) -> None:
    names = Resolver(platform_test=["127.0.0.2", "127.0.0.1"])  # nothing listens on 127.0.0.2
    media = fetcher(("platform.test",), resolver=names).download(f"http://platform.test:{port_of(base)}/jpeg",
                                                                 location="x")
    assert media.size == len(JPEG)
    assert names.calls == ["platform.test"]


def test_a_name_that_does_not_exist_is_unfetchable_and_a_failed_lookup_is_retried() -> None:
    def missing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ContentUnfetchable, match=r"platform\.test does not exist"):
        fetcher(("platform.test",), resolver=missing).download("https://platform.test/a.jpg", location="x")

    calls: list[str] = []

    def down(host: str, port: int) -> list[str]:
        calls.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(PlatformError, match="could not be looked up"):
        fetcher(("platform.test",), resolver=down, attempts=2).download("https://platform.test/a.jpg", location="x")
    assert calls == ["platform.test"] * 2


def test_the_callers_headers_are_not_sent_to_another_host_after_a_redirect(base: str) -> None:
    names = Resolver(start_test=["127.0.0.1"], cdn_test=["127.0.0.1"])
    port = port_of(base)
    start = f"http://start.test:{port}/redirect?to=http://cdn.test:{port}/jpeg"
    fetcher(("start.test", "cdn.test"), resolver=names).download(start, location="x",
                                                                headers={"Authorization": "Bearer t0ken"})
    sent = {path.split("?")[0]: headers for _m, path, headers, _b in SEEN.requests}
    assert sent["/redirect"]["authorization"] == "Bearer t0ken"
    assert "authorization" not in sent["/jpeg"]
    assert sent["/jpeg"]["host"] == f"cdn.test:{port}"


def test_an_ip_literal_is_checked_like_a_resolved_address(base: str) -> None:
    def never(host: str, port: int) -> list[str]:
        raise AssertionError("an IP address is not looked up")

    with pytest.raises(AddressNotAllowed, match=r"10\.0\.0\.1"):
        fetcher(("10.0.0.1",), networks=(), resolver=never).download("http://10.0.0.1/a.jpg", location="x")
    with pytest.raises(AddressNotAllowed, match=r"169\.254\.169\.254"):  # the cloud metadata address
        fetcher(("169.254.169.254",), networks=(), resolver=never).download("http://169.254.169.254/latest",
                                                                           location="x")
    with pytest.raises(HostNotAllowed, match=r"10\.0\.0\.1"):  # and allowed only when listed
        fetcher(("*.example.com",), networks=(), resolver=never).download("http://10.0.0.1/a.jpg", location="x")


def test_host_patterns_match_exact_names_and_subdomains_only() -> None:
    policy = FetchPolicy(hosts=("cdn.example", "*.Example.com", "10.0.0.1", "[2001:db8::1]"))
    assert policy.allows_host("cdn.example")
    assert policy.allows_host("CDN.Example.")
    assert not policy.allows_host("a.cdn.example")
    assert policy.allows_host("media.example.com")
    assert policy.allows_host("a.b.EXAMPLE.com")
    assert not policy.allows_host("example.com")  # the apex is not a subdomain
    assert not policy.allows_host("evilexample.com")
    assert not policy.allows_host("example.com.evil.net")
    assert policy.allows_host("10.0.0.1")
    assert not policy.allows_host("10.0.0.2")
    assert policy.allows_host("2001:db8:0::1")
    assert not FetchPolicy(hosts=("*.0.0.1",)).allows_host("10.0.0.1")  # an address never matches a wildcard


@pytest.mark.parametrize("pattern", ["*", "*.com", "cdn.*.example", "cdn.example:8080", "", "https://cdn.example/"])
def test_a_host_pattern_that_would_allow_too_much_or_is_not_a_host_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="host"):
        FetchPolicy(hosts=(pattern,))


@pytest.mark.parametrize("address", ["10.0.0.1", "172.16.3.4", "192.168.1.1", "127.0.0.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1",  # noqa: S104
                                     "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"])
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert not FetchPolicy(hosts=()).allows_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert FetchPolicy(hosts=()).allows_address(ipaddress.ip_address(address))


def test_allowed_networks_open_private_addresses_they_hold_and_no_others() -> None:
    policy = FetchPolicy(hosts=(), allow_networks=LOOPBACK)
    assert policy.allows_address(ipaddress.ip_address("127.0.0.1"))
    assert policy.allows_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not policy.allows_address(ipaddress.ip_address("10.0.0.1"))
    assert not policy.allows_address(ipaddress.ip_address("::1"))


# --- Types from bytes -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"),
                                           ("WEBP", "image/webp"), ("BMP", "image/bmp"), ("TIFF", "image/tiff"),
                                           ("HEIF", "image/heic"), ("AVIF", "image/avif")])
def test_sniff_names_images_pillow_writes(fmt: str, mime: str) -> None:
    if fmt == "HEIF":
        import pillow_heif  # hashing.decode registers it too; HEIF writing needs it

        pillow_heif.register_heif_opener()
    data = make_image_bytes(seed=3, size=(64, 48), fmt=fmt)
    assert sniff(data[:64]) == mime
    assert sniff(data[:32]) == mime
    assert mime in _EXTENSIONS


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\0\0\0\x08free"


def _ebml(doctype: bytes) -> bytes:
    elements = (b"\x42\x86\x81\x01" b"\x42\xf7\x81\x01" b"\x42\xf2\x81\x04" b"\x42\xf3\x81\x08"
                + b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype + b"\x42\x87\x81\x04")
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(elements)]) + elements


@pytest.mark.parametrize(("head", "mime"), [
    (_ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "video/mp4"),
    (_ftyp(b"mp42", b"mp42", b"isom"), "video/mp4"),
    (_ftyp(b"qt  ", b"qt  "), "video/quicktime"),
    (_ftyp(b"3gp4", b"3gp4", b"isom"), "video/3gpp"),
    (_ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
    (_ftyp(b"mif1", b"mif1", b"heic"), "image/heic"),
    (_ftyp(b"mif1", b"mif1", b"avif"), "image/avif"),
    (_ftyp(b"avis", b"avis", b"msf1"), "image/avif"),
    (b"\0\0\0\x08wide\0\0\x10\0mdat", "video/quicktime"),
    (_ebml(b"webm"), "video/webm"),
    (_ebml(b"matroska"), "video/x-matroska"),
    (b"RIFF\x24\0\0\0AVI LIST\x10\0\0\0hdrlavih", "video/x-msvideo"),
])
def test_sniff_names_video_containers_and_heif_from_their_first_bytes(head: bytes, mime: str) -> None:
    assert sniff(head) == mime
    assert mime in _EXTENSIONS


@pytest.mark.parametrize("head", [b"", HTML, b'{"error": "not found"}', b"BM is not enough to be a bitmap file",
                                  b"%PDF-1.7\n", b"PK\x03\x04\x14\0\0\0", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                                  b"\xff\xd8", b"GIF8"])
def test_sniff_names_nothing_for_what_is_not_media(head: bytes) -> None:
    assert sniff(head) is None


# --- API calls (call_json) ------------------------------------------------------------------------------

def test_call_json_sends_the_request_and_returns_the_parsed_answer(base: str) -> None:
    answer = fetcher().call_json("POST", f"{base}/json", body=b'{"type":"content.resolve"}',
                                 headers={"Content-Type": "application/json", "webhook-id": "r-1"})
    assert answer == {"items": [{"url": "https://cdn.example/1.jpg"}]}
    method, _path, headers, body = SEEN.requests[0]
    assert (method, body, headers["webhook-id"]) == ("POST", b'{"type":"content.resolve"}', "r-1")


def test_call_json_refuses_an_answer_that_is_not_json(base: str) -> None:
    with pytest.raises(PlatformRefused, match="answered something that is not JSON"):
        fetcher().call_json("GET", f"{base}/not-json")


def test_call_json_refuses_a_redirect_naming_its_target_and_does_not_follow_it(base: str) -> None:
    with pytest.raises(PlatformRefused, match=r"redirect \(HTTP 302\) to https://elsewhere.example/x") as refused:
        fetcher().call_json("GET", f"{base}/redirect?to=https://elsewhere.example/x%3Ftoken%3Dsecret")
    assert "secret" not in str(refused.value)
    assert SEEN.paths() == ["/redirect"]


def test_call_json_maps_404_and_refuses_answers_over_its_limit(base: str) -> None:
    with pytest.raises(ContentNotFound):
        fetcher().call_json("POST", f"{base}/status/404", body=b"{}")
    with pytest.raises(PlatformRefused, match="more than"):
        fetcher().call_json("GET", f"{base}/big-json", max_bytes=1000)


def test_call_json_keeps_to_the_same_host_and_address_rules(base: str) -> None:
    with pytest.raises(HostNotAllowed):
        fetcher(("platform.test",)).call_json("GET", f"{base}/json")
    with pytest.raises(AddressNotAllowed):
        fetcher(networks=()).call_json("GET", f"{base}/json")
    assert SEEN.requests == []


# --- Settings -------------------------------------------------------------------------------------------

def test_the_policy_from_settings_takes_every_limit_from_them(settings: Any, tmp_path: Path) -> None:
    settings.TAKEDOWN_FETCH_MAX_BYTES = 1234
    settings.TAKEDOWN_FETCH_CONNECT_SECONDS = 2
    settings.TAKEDOWN_FETCH_FIRST_BYTE_SECONDS = 3
    settings.TAKEDOWN_FETCH_TOTAL_SECONDS = 4
    settings.TAKEDOWN_FETCH_ATTEMPTS = 5
    settings.TAKEDOWN_FETCH_ALLOW_NETWORKS = ["10.1.0.0/16"]
    policy = FetchPolicy.from_settings(["CDN.example"])
    assert policy == FetchPolicy(hosts=("cdn.example",), allow_networks=(ipaddress.ip_network("10.1.0.0/16"),),
                                 max_bytes=1234, connect_seconds=2, first_byte_seconds=3, total_seconds=4,
                                 attempts=5)
    settings.TAKEDOWN_FETCH_SPOOL_DIR = tmp_path / "deep" / "spool"
    assert spool_dir().is_dir() and stat.S_IMODE(spool_dir().stat().st_mode) == 0o700


def test_a_bad_allowed_network_stops_the_settings_naming_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update({"SECRET_KEY": "k" * 50, "TAKEDOWN_VAR_DIR": str(tmp_path),
                "DJANGO_SETTINGS_MODULE": "moderation.settings",
                "TAKEDOWN_FETCH_ALLOW_NETWORKS": "127.0.0.0/8, 10.0.0.0/33"})
    code = "import django; from django.conf import settings; django.setup(); print(settings.TAKEDOWN_FETCH_MAX_BYTES)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "TAKEDOWN_FETCH_ALLOW_NETWORKS" in result.stderr and "10.0.0.0/33" in result.stderr
