"""The client's address behind a reverse proxy: X-Forwarded-For counts only through TAKEDOWN_TRUSTED_PROXIES.

The first tests check the walk over the header itself. The last ones send real HTTP requests through a
forwarding proxy on loopback that adds X-Forwarded-For as nginx's ``$proxy_add_x_forwarded_for`` does. All
traffic is from 127.0.0.1, so the proxy presents each "client" by the address the test puts in
``X-Test-Client`` (as if the connection had come from there) and drops that header.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.test.utils import override_settings
from rest_framework.authtoken.models import Token

from moderation.env import env_networks
from moderation.models import AuditEvent, Report
from moderation.roles import MODERATOR
from moderation.security.client import client_address, client_ip
from moderation.security.secrets import hash_pin, new_case_number, new_pin
from tests.conftest import notice_payload
from tests.moderation.console_helpers import make_case, user_with_role
from tests.moderation.legal_helpers import serving

ALICE, BOB = "198.51.100.7", "198.51.100.8"
PROXY = "127.0.0.1"


def meta(remote: str | None, forwarded: str | None = None) -> dict[str, str]:
    values = {} if remote is None else {"REMOTE_ADDR": remote}
    if forwarded is not None:
        values["HTTP_X_FORWARDED_FOR"] = forwarded
    return values


@override_settings(TAKEDOWN_TRUSTED_PROXIES=[])
def test_without_trusted_proxies_the_address_is_remote_addr_whatever_the_header_says() -> None:
    assert client_ip(meta("192.0.2.1", "203.0.113.9")) == "192.0.2.1"
    assert client_ip(meta(None, "203.0.113.9")) is None
    assert client_address(meta(None, "203.0.113.9")) == "unknown"


@override_settings(TAKEDOWN_TRUSTED_PROXIES=["10.0.0.0/8", "192.0.2.10"])
def test_the_header_is_walked_from_the_right_past_trusted_proxies_only() -> None:
    # The client wrote the first entry; the outer proxy appended the client, the inner one the outer proxy.
    assert client_ip(meta("10.1.1.1", "203.0.113.9, 198.51.100.7, 192.0.2.10")) == ALICE
    # A request from an untrusted address: its header is not looked at.
    assert client_ip(meta("198.51.100.20", "10.1.1.1")) == "198.51.100.20"
    # Every hop trusted: the leftmost one is the best we know.
    assert client_ip(meta("10.1.1.1", "10.2.2.2")) == "10.2.2.2"
    # The proxy itself, with no header (a health check).
    assert client_ip(meta("10.1.1.1")) == "10.1.1.1"


@override_settings(TAKEDOWN_TRUSTED_PROXIES=["10.0.0.0/8", "2001:db8::/32"])
def test_ports_brackets_and_ipv4_mapped_addresses_are_read_as_addresses() -> None:
    assert client_ip(meta("10.1.1.1", "198.51.100.7:51234")) == ALICE
    assert client_ip(meta("2001:db8::1", "[2606:4700::1]:8443, 2001:db8::2, [2001:db8:ffff::5]:443")) == "2606:4700::1"
    assert client_ip(meta("::ffff:10.1.1.1", "::ffff:198.51.100.7")) == ALICE


@override_settings(TAKEDOWN_TRUSTED_PROXIES=["10.0.0.0/8"])
@pytest.mark.parametrize("header", ["", " , ", "unknown", "198.51.100.7.1", "999.1.1.1", "<script>", "\x00",
                                    "1" * 5000, "198.51.100.7, not-an-address", ",,,"])
def test_a_malformed_header_stops_at_the_last_trusted_address_and_never_names_the_bucket(header: str) -> None:
    assert client_ip(meta("10.1.1.1", header)) == "10.1.1.1"


@override_settings(TAKEDOWN_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_garbage_left_of_an_address_the_proxy_appended_is_never_reached() -> None:
    assert client_ip(meta("10.1.1.1", "garbage, 999.9.9.9, 198.51.100.7")) == ALICE


def test_a_trusted_proxy_that_is_not_an_address_or_network_is_refused_by_name(monkeypatch: Any) -> None:
    monkeypatch.setenv("TAKEDOWN_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example.org")
    with pytest.raises(ImproperlyConfigured, match=r"proxy\.example\.org"):
        env_networks("TAKEDOWN_TRUSTED_PROXIES", [])  # what the settings read at start-up
    monkeypatch.setenv("TAKEDOWN_TRUSTED_PROXIES", "10.1.2.3/8,192.0.2.10")
    assert env_networks("TAKEDOWN_TRUSTED_PROXIES", []) == ["10.0.0.0/8", "192.0.2.10/32"]
    with override_settings(TAKEDOWN_TRUSTED_PROXIES=["proxy.example.org"]), \
            pytest.raises(ImproperlyConfigured, match=r"proxy\.example\.org"):
        client_ip(meta("10.1.1.1", ALICE))


# --- Through a real proxy on loopback -------------------------------------------------------------------------

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class _ForwardingProxy(BaseHTTPRequestHandler):
    """Forwards each request to ``upstream`` and appends the client's address to X-Forwarded-For, as nginx's
    ``proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`` does."""

    upstream: tuple[str, int] = ("127.0.0.1", 0)

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        client = self.headers.get("X-Test-Client") or self.client_address[0]
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in _HOP_BY_HOP | {"x-test-client", "x-forwarded-for", "host"}}
        received = self.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{received}, {client}" if received else client
        headers["Host"] = self.headers.get("Host", "")
        upstream = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def proxy(live_server: Any) -> Iterator[str]:
    """A forwarding proxy in front of the live server; yields its ``host:port``."""
    target = urlsplit(live_server.url)
    with serving(type("Proxy", (_ForwardingProxy,), {"upstream": (target.hostname, target.port)})) as url:
        yield urlsplit(url).netloc


def send(host: str, method: str, path: str, *, client: str | None = None, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request; the status and the JSON answer (or None)."""
    sent = dict(headers or {})
    if client is not None:
        sent["X-Test-Client"] = client
    data = None
    if body is not None:
        data, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
    connection = http.client.HTTPConnection(host, timeout=30)
    try:
        connection.request(method, path, body=data, headers=sent)
        answer = connection.getresponse()
        payload = answer.read()
    finally:
        connection.close()
    try:
        return answer.status, json.loads(payload)
    except ValueError:
        return answer.status, None


@pytest.fixture
def limits(settings: Any) -> Iterator[None]:
    settings.TAKEDOWN_RATE_LIMITS = {"report": (2, 3600), "lookup": (1000, 3600)}
    settings.TAKEDOWN_PIN_MAX_FAILURES = 3
    cache.clear()
    yield
    cache.clear()


def a_case() -> tuple[str, str]:
    pin, number = new_pin(), new_case_number()
    Report.objects.filter(pk=make_case().report_id).update(pin_hash=hash_pin(pin), case_number=number)
    return number, pin


def a_claim_by_a_moderator(host: str, *, client: str, headers: dict[str, str] | None = None) -> AuditEvent:
    task = make_case()
    token = Token.objects.create(user=user_with_role(f"mod-{task.pk}", MODERATOR))
    status, _ = send(host, "POST", f"/api/v1/queue/{task.pk}/claim", client=client, body={},
                     headers={"Authorization": f"Token {token.key}", **(headers or {})})
    assert status == 200
    return AuditEvent.objects.get(action="task.claimed", object_id=str(task.pk))


@pytest.mark.django_db(transaction=True)
def test_behind_a_trusted_proxy_each_client_has_its_own_limits_lockout_and_audit_address(
        proxy: str, limits: None, settings: Any) -> None:
    settings.TAKEDOWN_TRUSTED_PROXIES = [PROXY]
    # Rate limit: Alice spends her two reports; Bob, behind the same proxy, still has his.
    assert [send(proxy, "POST", "/api/v1/reports", client=ALICE, body=notice_payload())[0]
            for _ in range(3)] == [201, 201, 429]
    assert send(proxy, "POST", "/api/v1/reports", client=BOB, body=notice_payload())[0] == 201
    # PIN lockout: Alice guesses three wrong case numbers and is locked out, even with a right PIN; Bob is not.
    number, pin = a_case()
    for _ in range(3):
        assert send(proxy, "GET", f"/api/v1/reports/{new_case_number()}", client=ALICE,
                    headers={"X-Case-Pin": "WRONG-PIN0-0000"})[0] == 404
    assert send(proxy, "GET", f"/api/v1/reports/{number}", client=ALICE, headers={"X-Case-Pin": pin})[0] == 429
    assert send(proxy, "GET", f"/api/v1/reports/{number}", client=BOB, headers={"X-Case-Pin": pin})[0] == 200
    # A staff request's audit event carries the client's address, not the proxy's.
    assert a_claim_by_a_moderator(proxy, client=ALICE).source_ip == ALICE


@pytest.mark.django_db(transaction=True)
def test_behind_a_trusted_proxy_a_client_cannot_choose_its_address_by_sending_the_header(
        proxy: str, limits: None, settings: Any) -> None:
    settings.TAKEDOWN_TRUSTED_PROXIES = [PROXY]
    for n in range(2):
        assert send(proxy, "POST", "/api/v1/reports", client=ALICE, body=notice_payload(),
                    headers={"X-Forwarded-For": f"203.0.113.{n + 1}"})[0] == 201
    for spoof in ("203.0.113.50", "garbage, <script>", "999.1.1.1", ", ,"):
        assert send(proxy, "POST", "/api/v1/reports", client=ALICE, body=notice_payload(),
                    headers={"X-Forwarded-For": spoof})[0] == 429
    event = a_claim_by_a_moderator(proxy, client=ALICE, headers={"X-Forwarded-For": "203.0.113.50"})
    assert event.source_ip == ALICE


@pytest.mark.django_db(transaction=True)
def test_without_a_trusted_proxy_a_forwarded_for_header_is_ignored(proxy: str, limits: None, settings: Any,
                                                                   live_server: Any) -> None:
    settings.TAKEDOWN_TRUSTED_PROXIES = []
    for _ in range(2):
        assert send(proxy, "POST", "/api/v1/reports", client=ALICE, body=notice_payload())[0] == 201
    # Every client behind an untrusted proxy is the proxy, whatever it or the client writes in the header.
    assert send(proxy, "POST", "/api/v1/reports", client=BOB, body=notice_payload())[0] == 429
    direct = urlsplit(live_server.url).netloc
    assert send(direct, "POST", "/api/v1/reports", body=notice_payload(),
                headers={"X-Forwarded-For": BOB})[0] == 429
    assert a_claim_by_a_moderator(proxy, client=ALICE, headers={"X-Forwarded-For": BOB}).source_ip == PROXY


@pytest.mark.django_db
@override_settings(TAKEDOWN_TRUSTED_PROXIES=[PROXY])
def test_a_reporters_address_is_never_in_the_audit_log_behind_a_trusted_proxy() -> None:
    Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=ALICE).post("/api/v1/reports", notice_payload(),
                                                               content_type="application/json")
    events = AuditEvent.objects.all()
    assert events.exists() and not events.exclude(source_ip=None).exists()
    assert ALICE not in json.dumps(list(events.values()), default=str)
