"""The one HTTP client (moderation/http.py) against a scripted server on loopback: what it retries and how
long it waits (recorded, not slept), what it refuses, and the limits on what it reads."""

from __future__ import annotations

import pickle
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from moderation import http
from tests.moderation.legal_helpers import serving


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False  # no Content-Length: the body in chunks, as long as it is
    drip_seconds: float = 0.0  # a pause before each chunk


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    url: str
    script: list[Answer]
    seen: list[Seen] = field(default_factory=list)


@contextmanager
def scripted(*answers: Answer) -> Iterator[Server]:
    """A server on 127.0.0.1 answering the n-th request with ``answers[n]`` (the last one from then on)."""
    server_state = Server(url="", script=list(answers))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            server_state.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                          body))
            script = server_state.script
            answer = script[min(len(server_state.seen), len(script)) - 1]
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(answer.body), 1024):
                    time.sleep(answer.drip_seconds)
                    chunk = answer.body[start:start + 1024]
                    try:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return  # the client stopped reading
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        do_GET = do_POST = answer

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        server_state.url = url
        yield server_state


def client(sleeps: list[float], **options: Any) -> http.HttpClient:
    return http.HttpClient(purpose="tests", sleep=sleeps.append, **options)


def test_a_2xx_answer_comes_back_with_its_body_and_the_request_names_takedown() -> None:
    with scripted(Answer(201, b'{"ok": true}')) as server:
        answer = client([]).post(server.url + "/hooks?token=abc", content=b'{"a":1}',
                                 headers={"Content-Type": "application/json"})
    assert (answer.status, answer.json()) == (201, {"ok": True})
    assert answer.url == server.url + "/hooks"  # the query (it may hold a token) is left out of what is kept
    [request] = server.seen
    assert (request.method, request.path, request.body) == ("POST", "/hooks?token=abc", b'{"a":1}')
    assert request.headers["user-agent"] == f"Takedown/{http.VERSION} (tests)"


def test_server_errors_are_retried_with_growing_jittered_waits_then_succeed() -> None:
    sleeps: list[float] = []
    retry = http.Retry(attempts=4, wait_initial=0.5, wait_max=30.0, jitter=0.5)
    with scripted(Answer(503), Answer(500), Answer(502), Answer(200, b"done")) as server:
        answer = client(sleeps, retry=retry).get(server.url)
    assert answer.body == b"done" and len(server.seen) == 4
    assert len(sleeps) == 3
    for wait, full in zip(sleeps, (0.5, 1.0, 2.0), strict=True):
        assert full / 2 <= wait <= full  # the backoff, less up to half of it at random


def test_the_last_error_is_raised_when_every_attempt_fails_and_says_it_may_pass() -> None:
    with scripted(Answer(503, b"maintenance until noon")) as server, \
            pytest.raises(http.ServerError) as failed:
        client([], retry=http.Retry(attempts=3)).get(server.url + "/x")
    assert len(server.seen) == 3
    assert failed.value.status == 503 and failed.value.retryable
    assert isinstance(failed.value, http.Transient)
    assert "maintenance until noon" in str(failed.value) and failed.value.detail == "maintenance until noon"


def test_retry_after_is_honoured_and_capped() -> None:
    sleeps: list[float] = []
    retry = http.Retry(attempts=3, retry_after_max=60.0)
    with scripted(Answer(429, headers={"Retry-After": "7"}), Answer(429, headers={"Retry-After": "86400"}),
                  Answer(200)) as server:
        client(sleeps, retry=retry).get(server.url)
    assert len(server.seen) == 3
    assert sleeps == [7.0, 60.0]


def test_retry_after_as_an_http_date_is_read_as_seconds_from_now() -> None:
    later = time.time() + 30
    seconds = http.retry_after_seconds(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(later)))
    assert seconds is not None and 0 < seconds <= 30
    assert http.retry_after_seconds("not a date") is None
    assert http.retry_after_seconds("") is None


@pytest.mark.parametrize("status, kind", [(400, http.Refused), (401, http.Refused), (422, http.Refused),
                                          (404, http.Gone), (410, http.Gone)])
def test_a_4xx_is_final_and_not_retried(status: int, kind: type[http.HttpError]) -> None:
    sleeps: list[float] = []
    with scripted(Answer(status, b'{"detail": "no such thing"}')) as server, pytest.raises(kind) as refused:
        client(sleeps).post(server.url, content=b"{}")
    assert len(server.seen) == 1 and sleeps == []
    assert not refused.value.retryable and not isinstance(refused.value, http.Transient)
    assert isinstance(refused.value, http.Refused) and refused.value.status == status
    assert "no such thing" in refused.value.detail


def test_408_and_429_are_retried_like_server_errors() -> None:
    with scripted(Answer(408), Answer(429), Answer(204, b"")) as server:
        assert client([]).get(server.url).status == 204
    assert len(server.seen) == 3


def test_a_redirect_is_refused_with_what_to_change() -> None:
    with scripted(Answer(301, headers={"Location": "https://elsewhere.example/hooks"})) as server, \
            pytest.raises(http.Refused, match=re.escape("https://elsewhere.example/hooks: use the final URL")):
        client([]).post(server.url, content=b"{}")
    assert len(server.seen) == 1


def test_one_attempt_means_one_request_even_for_a_retryable_error() -> None:
    with scripted(Answer(503)) as server, pytest.raises(http.ServerError):
        client([], retry=http.ONE_ATTEMPT).post(server.url, content=b"{}")
    assert len(server.seen) == 1


def test_nothing_listening_is_unreachable_after_every_attempt() -> None:
    with scripted(Answer()) as server:
        url = server.url  # closed on leaving: nothing listens there now
    sleeps: list[float] = []
    with pytest.raises(http.Unreachable, match="could not reach") as failed:
        client(sleeps, retry=http.Retry(attempts=3)).get(url + "/x")
    assert len(sleeps) == 2 and failed.value.retryable


def test_an_answer_longer_than_the_limit_is_refused_unread() -> None:
    big = b"x" * 10_000
    with scripted(Answer(200, big)) as server, pytest.raises(http.ResponseTooLarge, match="10000 bytes"):
        client([], max_bytes=4096).get(server.url)
    with scripted(Answer(200, big, chunked=True)) as server, pytest.raises(http.ResponseTooLarge, match="more than"):
        client([], max_bytes=4096).get(server.url)
    assert len(server.seen) == 1  # not retried: a longer answer will not shrink
    with scripted(Answer(200, big, chunked=True)) as server:
        assert client([], max_bytes=10_000).get(server.url).body == big


def test_an_answer_that_trickles_in_past_the_total_timeout_is_cut_off() -> None:
    slow = Answer(200, b"x" * 20 * 1024, chunked=True, drip_seconds=0.2)  # 20 chunks, ~4 s in all
    timeouts = http.Timeouts(connect=5, read=5, total=0.5)  # each read is quick; the whole is not
    with scripted(slow) as server, pytest.raises(http.Unreachable, match=r"took longer than 0\.5 s"):
        client([], retry=http.ONE_ATTEMPT, timeouts=timeouts).get(server.url)


def test_a_url_that_is_not_http_is_a_bad_url_before_anything_is_sent() -> None:
    for url in ("ftp://host.example/file", "file:///etc/passwd", "http:///no-host"):
        with pytest.raises(http.BadUrl):
            client([]).get(url)


def test_errors_survive_pickling_with_their_status_so_celery_can_pass_them_on() -> None:
    response = http.Response(status=503, headers={"retry-after": "5"}, body=b"busy", url="https://host.example/x")
    for error in (http.ServerError("failed", response=response), http.Throttled("slow down", response=response),
                  http.Unreachable("could not reach", url="https://host.example/x", reason="refused")):
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
        assert type(copy) is type(error) and str(copy) == str(error) and copy.__dict__ == error.__dict__


def test_retry_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        http.Retry(attempts=0)
    with pytest.raises(ValueError, match="share"):
        http.Retry(jitter=2)
