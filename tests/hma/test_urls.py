"""The routes taking url= fetch through the safe fetcher, from the hosts TAKEDOWN_HMA_FETCH_HOSTS lists only."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.hma.conftest import Hma, pdq_of
from tests.moderation.legal_helpers import serving

pytestmark = pytest.mark.django_db


@pytest.fixture
def media_server(photo: Callable[[int], bytes]) -> Iterator[str]:
    body = photo(21)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")  # the type comes from the bytes
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        yield url


@pytest.fixture
def fetching(settings: Any) -> None:
    settings.TAKEDOWN_HMA_FETCH_HOSTS = ["127.0.0.1"]
    settings.TAKEDOWN_FETCH_ALLOW_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]


def test_a_url_is_hashed_matched_and_banked_when_its_host_is_listed(
        hma: Hma, curator: Hma, media_server: str, fetching: None, photo: Callable[[int], bytes]) -> None:
    url = f"{media_server}/photo.jpg"
    pdq = pdq_of(photo(21))
    assert hma.get("/h/hash", {"url": url}).json() == {"pdq": pdq}
    curator.post("/c/banks", {"name": "BY_URL"})
    response = curator.post("/c/bank/BY_URL/content", {"metadata": {"content_uri": url}}, query=f"url={url}")
    assert response.status_code == 200, response.content
    content_id = response.json()["id"]
    assert hma.get("/m/lookup", {"url": url}).json() == {
        "pdq": {"BY_URL": [{"bank_content_id": content_id, "distance": "0"}]}}
    assert hma.get("/m/lookup", {"url": url, "signal_type": "pdq"}).json() == {
        "BY_URL": [{"bank_content_id": content_id, "distance": "0"}]}
    assert curator.get(f"/c/bank/BY_URL/content/{content_id}").json()["metadata"] == {"content_uri": url}


def test_a_url_is_refused_when_fetching_is_off_or_its_address_is_private(
        hma: Hma, media_server: str, settings: Any) -> None:
    settings.TAKEDOWN_HMA_FETCH_HOSTS = []
    response = hma.get("/h/hash", {"url": f"{media_server}/photo.jpg"})
    assert response.status_code == 400 and "upload the file" in response.json()["message"]
    settings.TAKEDOWN_HMA_FETCH_HOSTS = ["127.0.0.1"]
    settings.TAKEDOWN_FETCH_ALLOW_NETWORKS = []
    response = hma.get("/h/hash", {"url": f"{media_server}/photo.jpg"})
    assert response.status_code == 400 and response.json()["message"].startswith("Failed to fetch URL")
    settings.TAKEDOWN_FETCH_ALLOW_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]
    assert hma.get("/h/hash", {"url": "https://elsewhere.example/p.jpg"}).status_code == 400
