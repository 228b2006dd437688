"""A loopback host platform for Takedown's tests, written from docs/platforms.md, docs/platform-api.yaml and
docs/webhooks.md alone (none of Takedown's code is read or imported).

Its reportable locations are ``https://platform.test/p/<id>`` (alias host ``www.platform.test``). It serves:

- ``POST /takedown/resolve``: the ``http`` platform contract (signed per Standard Webhooks, or a bearer token);
- ``GET /media/<media-id>?exp=...&sig=...``: the bytes, at short-lived signed URLs that ``resolve`` hands out;
- ``POST /takedown/hooks``: the takedown webhook receiver (``content.remove`` / ``content.restore``);
- ``GET /_test/log``, ``DELETE /_test/log``, ``GET /_test/state``, ``POST /_test/posts``,
  ``PUT /_test/hooks-behaviour``: test-only endpoints, with no authentication (loopback only).

Configuration, from the environment:

- ``PLATFORM_SERVER_STATE``: the JSON state file (below), read once at the first request;
- ``PLATFORM_SERVER_AUTH``: ``signature`` (default) or ``bearer``, how ``resolve`` is authenticated;
- ``PLATFORM_SERVER_SECRET``: the ``whsec_...`` Standard Webhooks secret (resolve with ``signature``, and always
  the webhooks);
- ``PLATFORM_SERVER_TOKEN``: the bearer token, with ``PLATFORM_SERVER_AUTH=bearer``;
- ``PLATFORM_SERVER_MEDIA_BASE``: where download URLs point (``http://host:port``); by default the scheme and
  ``Host`` the resolve request came in on;
- ``PLATFORM_SERVER_URL_TTL``: seconds a download URL stays valid (default 600).

The state file::

    {"posts": [{"id": "123", "uploader": "user-1", "posted_at": "2026-01-02T03:04:05Z", "removed": false,
                "behaviour": null,
                "media": [{"id": "m-123-0", "file": "/abs/path.jpg", "content_type": "image/jpeg",
                           "behaviour": null, "uploader": null, "posted_at": null}]}],
     "hooks_behaviour": null}

A behaviour is ``null`` (behave normally) or an object with a ``kind``:

==========================  =========  =======================================================================
kind (parameters)           where      what happens, over the socket
==========================  =========  =======================================================================
``status`` (status,         any        answer that status with ``{"error": ...}`` (and ``Retry-After``)
retry_after)
``fail_first`` (count,      any        answer ``status`` (500) to the first ``count`` calls for this post,
status, retry_after)                   media item or receiver, then behave normally (counted in the process)
``slow_first_byte``         any        sleep ``seconds`` before sending anything, then behave normally
(seconds)
``redirect`` (to, status)   any        302 (or ``status``) to ``to``: an absolute URL, ``{port}`` replaced
``not_json``                resolve    200, ``text/html``, an HTML page
``no_items``                resolve    200, JSON with ``location`` and ``uploader`` but no ``items``
``redirect_elsewhere``      media      302 to ``http://elsewhere.test:<this port>/media/x``
``redirect_localhost``      media      302 to ``http://localhost:<this port>/media/<to or this id>`` (signed)
``endless`` (chunk,         media      200 ``image/jpeg``, chunked, the file's first bytes then zeros forever:
interval, max_seconds)                 ``chunk`` bytes (65536) every ``interval`` s (0) until the client hangs
                                       up (or ``max_seconds``, 300, pass)
``huge_length`` (interval,  media      200 with ``Content-Length: 2147483648``, the file's first 16 bytes,
max_seconds)                           then one byte every ``interval`` s (0.5) until the client hangs up
``html_as_jpeg``            media      200, HTML bytes labelled ``image/jpeg``
``jpeg_as_html``            media      200, the file's (JPEG) bytes labelled ``text/html``
==========================  =========  =======================================================================

``fail_first`` counters, removals and the log live in this process's memory: run it as ONE gunicorn worker
(``--workers 1 --threads 8``); several workers would each count and log on their own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from standardwebhooks import Webhook, WebhookVerificationError

CANONICAL_HOST = "platform.test"
LOCATION_HOSTS = ("platform.test", "www.platform.test")
LOCATION_PATH = re.compile(r"^/p/([A-Za-z0-9_-]{1,64})/?$")
MEDIA_PATH = re.compile(r"^/media/([A-Za-z0-9_.-]{1,128})$")
RESOLVE_PATH = "/takedown/resolve"
HOOKS_PATH = "/takedown/hooks"
MAX_REQUEST_BYTES = 1 << 20
HUGE_LENGTH = 2_147_483_648
HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>platform.test</title></head>"
             b"<body><p>Not an image.</p></body></html>\n")

COMMON_KINDS = frozenset({"status", "fail_first", "slow_first_byte", "redirect"})
RESOLVE_KINDS = COMMON_KINDS | {"not_json", "no_items"}
MEDIA_KINDS = COMMON_KINDS | {"redirect_elsewhere", "redirect_localhost", "endless", "huge_length",
                              "html_as_jpeg", "jpeg_as_html"}
HOOKS_KINDS = frozenset({"status", "fail_first", "slow_first_byte"})

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class StateError(ValueError):
    """A state file entry (or a ``POST /_test/posts`` body) that does not describe a post; names the field."""


def canonical_location(post_id: str) -> str:
    return f"https://{CANONICAL_HOST}/p/{post_id}"


def post_id_of(location: str) -> str | None:
    """The post a location names, in any of its forms (http/https, either host, a trailing slash), or None."""
    try:
        parts = urlsplit(location.strip())
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or host not in LOCATION_HOSTS or parts.username:
        return None
    if port not in (None, 80, 443):
        return None
    match = LOCATION_PATH.match(parts.path)
    return match.group(1) if match else None


def _check_behaviour(value: Any, allowed: frozenset[str], where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        raise StateError(f"{where}: a behaviour is null or an object with a 'kind'")
    if value["kind"] not in allowed:
        raise StateError(f"{where}.kind: {value['kind']!r} is not one of {sorted(allowed)}")
    for name in ("status", "count"):
        if name in value and (not isinstance(value[name], int) or isinstance(value[name], bool)):
            raise StateError(f"{where}.{name}: must be an integer")
    for name in ("seconds", "interval", "max_seconds", "retry_after"):
        if name in value and (not isinstance(value[name], int | float) or isinstance(value[name], bool)):
            raise StateError(f"{where}.{name}: must be a number")
    return dict(value)


def _optional_str(entry: dict[str, Any], name: str, where: str) -> str | None:
    value = entry.get(name)
    if value is not None and not isinstance(value, str):
        raise StateError(f"{where}.{name}: must be a string or null")
    return value


@dataclass
class Media:
    id: str
    file: Path
    content_type: str
    behaviour: dict[str, Any] | None = None
    uploader: str | None = None
    posted_at: str | None = None
    calls: int = 0


@dataclass
class Post:
    id: str
    media: list[Media]
    uploader: str | None = None
    posted_at: str | None = None
    behaviour: dict[str, Any] | None = None
    removed: bool = False
    calls: int = 0
    statement: Any = None


def parse_post(entry: Any, where: str = "post") -> Post:
    if not isinstance(entry, dict):
        raise StateError(f"{where}: must be an object")
    post_id = entry.get("id")
    if isinstance(post_id, int) and not isinstance(post_id, bool):
        post_id = str(post_id)
    if not isinstance(post_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", post_id):
        raise StateError(f"{where}.id: 1 to 64 letters, digits, '-' or '_'")
    media_entries = entry.get("media")
    if not isinstance(media_entries, list) or not 1 <= len(media_entries) <= 50:
        raise StateError(f"{where}.media: a list of 1 to 50 media items")
    media = []
    for index, item in enumerate(media_entries):
        at = f"{where}.media[{index}]"
        if not isinstance(item, dict):
            raise StateError(f"{at}: must be an object")
        media_id = item.get("id")
        if not isinstance(media_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", media_id):
            raise StateError(f"{at}.id: 1 to 128 letters, digits, '.', '-' or '_'")
        file = item.get("file")
        if not isinstance(file, str) or not Path(file).is_file():
            raise StateError(f"{at}.file: the path of an existing file")
        content_type = item.get("content_type") or "application/octet-stream"
        if not isinstance(content_type, str):
            raise StateError(f"{at}.content_type: must be a string")
        media.append(Media(id=media_id, file=Path(file), content_type=content_type,
                           behaviour=_check_behaviour(item.get("behaviour"), MEDIA_KINDS, f"{at}.behaviour"),
                           uploader=_optional_str(item, "uploader", at),
                           posted_at=_optional_str(item, "posted_at", at)))
    removed = entry.get("removed", False)
    if not isinstance(removed, bool):
        raise StateError(f"{where}.removed: true or false")
    return Post(id=post_id, media=media, uploader=_optional_str(entry, "uploader", where),
                posted_at=_optional_str(entry, "posted_at", where),
                behaviour=_check_behaviour(entry.get("behaviour"), RESOLVE_KINDS, f"{where}.behaviour"),
                removed=removed)


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Status {code}"


def _json_response(start_response: StartResponse, code: int, payload: Any,
                   headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(_status_line(code), [("Content-Type", "application/json"),
                                        ("Content-Length", str(len(body))), *headers])
    return [body]


def _error(start_response: StartResponse, code: int, message: str,
           headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    return _json_response(start_response, code, {"error": message}, headers)


def _request_headers(environ: Environ) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def _read_body(environ: Environ) -> bytes | None:
    """The raw body, or None when it is over 1 MiB."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        if int(length) > MAX_REQUEST_BYTES:
            return None
        return bytes(stream.read(int(length)))
    data = bytes(stream.read(MAX_REQUEST_BYTES + 1))
    return None if len(data) > MAX_REQUEST_BYTES else data


class Platform:
    """The platform's memory (posts, counters, the log) and its routes. Thread-safe: one lock for everything."""

    def __init__(self, *, posts: list[Post], hooks_behaviour: dict[str, Any] | None, auth: str, secret: str | None,
                 token: str | None, media_base: str | None, url_ttl: int) -> None:
        if auth not in ("signature", "bearer"):
            raise StateError(f"PLATFORM_SERVER_AUTH: 'signature' or 'bearer', not {auth!r}")
        if not secret:
            raise StateError("PLATFORM_SERVER_SECRET: the whsec_... secret is required (it signs the webhooks)")
        if auth == "bearer" and not token:
            raise StateError("PLATFORM_SERVER_TOKEN: required with PLATFORM_SERVER_AUTH=bearer")
        self.verifier = Webhook(secret)
        self.auth = auth
        self.token = token or ""
        self.media_base = media_base.rstrip("/") if media_base else None
        self.url_ttl = url_ttl
        self.url_key = hashlib.sha256(b"loopback-platform media urls\0" + secret.encode()).digest()
        self.lock = threading.Lock()
        self.posts: dict[str, Post] = {}
        self.media: dict[str, tuple[Post, Media]] = {}
        self.hooks_behaviour = hooks_behaviour
        self.hooks_calls = 0
        self.handled: dict[str, str] = {}  # webhook-id -> event, for idempotency
        self.log: dict[str, list[dict[str, Any]]] = {"resolve": [], "media": [], "hooks": []}
        for post in posts:
            self._add(post)

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None) -> Platform:
        env = dict(os.environ if env is None else env)
        state: dict[str, Any] = {}
        if env.get("PLATFORM_SERVER_STATE"):
            state = json.loads(Path(env["PLATFORM_SERVER_STATE"]).read_text())
        if not isinstance(state, dict):
            raise StateError("state file: must hold a JSON object")
        entries = state.get("posts") or []
        if not isinstance(entries, list):
            raise StateError("state file: 'posts' must be a list")
        posts = [parse_post(entry, f"posts[{index}]") for index, entry in enumerate(entries)]
        hooks = _check_behaviour(state.get("hooks_behaviour"), HOOKS_KINDS, "hooks_behaviour")
        return cls(posts=posts, hooks_behaviour=hooks, auth=env.get("PLATFORM_SERVER_AUTH") or "signature",
                   secret=env.get("PLATFORM_SERVER_SECRET"), token=env.get("PLATFORM_SERVER_TOKEN"),
                   media_base=env.get("PLATFORM_SERVER_MEDIA_BASE"),
                   url_ttl=int(env.get("PLATFORM_SERVER_URL_TTL") or 600))

    def _add(self, post: Post) -> None:
        """Adds (or replaces) a post; its media ids must not belong to another post."""
        for item in post.media:
            owner = self.media.get(item.id)
            if owner is not None and owner[0].id != post.id:
                raise StateError(f"media id {item.id!r} belongs to post {owner[0].id!r} already")
        previous = self.posts.get(post.id)
        if previous is not None:
            for item in previous.media:
                self.media.pop(item.id, None)
        self.posts[post.id] = post
        for item in post.media:
            self.media[item.id] = (post, item)

    # --- routing ---------------------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == RESOLVE_PATH:
            return self._only(method, ("POST",), start_response) or self.resolve(environ, start_response)
        if path == HOOKS_PATH:
            return self._only(method, ("POST",), start_response) or self.hooks(environ, start_response)
        match = MEDIA_PATH.match(path)
        if match:
            return (self._only(method, ("GET", "HEAD"), start_response)
                    or self.download(match.group(1), environ, start_response, head=method == "HEAD"))
        if path == "/_test/log":
            if method == "DELETE":
                with self.lock:
                    for entries in self.log.values():
                        entries.clear()
                return _json_response(start_response, 200, {"cleared": True})
            return self._only(method, ("GET",), start_response) or self._test_log(start_response)
        if path == "/_test/state":
            return self._only(method, ("GET",), start_response) or self._test_state(start_response)
        if path == "/_test/posts":
            return self._only(method, ("POST",), start_response) or self._test_add_post(environ, start_response)
        if path == "/_test/hooks-behaviour":
            return self._only(method, ("PUT",), start_response) or self._test_hooks(environ, start_response)
        return _error(start_response, 404, f"no such page: {path}")

    @staticmethod
    def _only(method: str, allowed: tuple[str, ...], start_response: StartResponse) -> list[bytes] | None:
        if method in allowed:
            return None
        return _error(start_response, 405, f"{method} is not allowed here", [("Allow", ", ".join(allowed))])

    # --- shared behaviours -----------------------------------------------------------------------------------

    def _count(self, owner: Post | Media | None) -> int:
        with self.lock:
            if owner is None:
                self.hooks_calls += 1
                return self.hooks_calls
            owner.calls += 1
            return owner.calls

    def _common(self, behaviour: dict[str, Any] | None, owner: Post | Media | None, environ: Environ,
                start_response: StartResponse, entry: dict[str, Any]) -> list[bytes] | None:
        """Applies a behaviour every endpoint shares; None means "go on as normal"."""
        if behaviour is None:
            return None
        kind = behaviour["kind"]
        retry = [("Retry-After", str(behaviour["retry_after"]))] if "retry_after" in behaviour else []
        if kind == "status":
            entry["status"] = int(behaviour.get("status", 500))
            return _error(start_response, entry["status"], f"set up to answer {entry['status']}", retry)
        if kind == "fail_first":
            call = self._count(owner)
            entry["call"] = call
            if call <= int(behaviour.get("count", 1)):
                entry["status"] = int(behaviour.get("status", 500))
                return _error(start_response, entry["status"], f"failing on purpose (call {call})", retry)
            return None
        if kind == "slow_first_byte":
            time.sleep(float(behaviour.get("seconds", 5)))
            return None
        if kind == "redirect":
            target = str(behaviour.get("to", "")).replace("{port}", self._port(environ))
            entry["status"] = int(behaviour.get("status", 302))
            entry["redirect_to"] = target
            return _error(start_response, entry["status"], "moved", [("Location", target)])
        return None

    @staticmethod
    def _port(environ: Environ) -> str:
        return str(environ.get("SERVER_PORT") or "80")

    def _verify_signature(self, body: bytes, headers: dict[str, str]) -> str | None:
        """None when the Standard Webhooks signature (and timestamp) verify, else why not."""
        try:
            self.verifier.verify(body, headers, json_parse=False)
        except WebhookVerificationError as exc:
            return str(exc) or "the signature does not verify"
        return None

    # --- resolve ---------------------------------------------------------------------------------------------

    def resolve(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        headers = _request_headers(environ)
        entry: dict[str, Any] = {
            "at": time.time(), "location": None, "webhook_id": headers.get("webhook-id"), "auth": self.auth,
            "signature_verified": None, "auth_ok": False, "user_agent": headers.get("user-agent"),
            "content_type": headers.get("content-type"), "status": None, "problems": []}
        with self.lock:
            self.log["resolve"].append(entry)
        body = _read_body(environ)
        if body is None:
            entry["status"] = 413
            return _error(start_response, 413, "the request body is over 1 MiB")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("location"), str):
            entry["location"] = payload["location"]
        if self.auth == "signature":
            why = self._verify_signature(body, headers)
            entry["signature_verified"] = why is None
            if why is not None:
                entry["status"] = 401
                return _error(start_response, 401, f"signature: {why}")
        else:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                entry["status"] = 401
                return _error(start_response, 401, "authorization: a valid bearer token is required")
        entry["auth_ok"] = True
        if not (headers.get("content-type") or "").lower().startswith("application/json"):
            entry["problems"].append(f"content-type is {headers.get('content-type')!r}, not application/json")
        problem = self._resolve_request_problem(payload)
        if problem:
            entry["status"] = 400
            return _error(start_response, 400, problem)
        location = payload["location"]
        post_id = post_id_of(location)
        if post_id is None:
            entry["status"] = 404
            return _error(start_response, 404, "location: not a post on platform.test")
        if location != canonical_location(post_id):
            entry["problems"].append(f"location {location!r} is not in canonical form {canonical_location(post_id)!r}")
        with self.lock:
            post = self.posts.get(post_id)
        if post is None:
            entry["status"] = 404
            return _error(start_response, 404, "no content at this location")
        if post.removed:
            entry["status"] = 410
            return _error(start_response, 410, "this content has been removed")
        shared = self._common(post.behaviour, post, environ, start_response, entry)
        if shared is not None:
            return shared
        kind = (post.behaviour or {}).get("kind")
        if kind == "not_json":
            entry["status"] = 200
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                      ("Content-Length", str(len(HTML_PAGE)))])
            return [HTML_PAGE]
        answer: dict[str, Any] = {"location": canonical_location(post.id)}
        if post.uploader is not None:
            answer["uploader"] = post.uploader
        if post.posted_at is not None:
            answer["posted_at"] = post.posted_at
        if kind != "no_items":
            answer["items"] = [self._item(environ, media) for media in post.media]
        entry["status"] = 200
        return _json_response(start_response, 200, answer)

    @staticmethod
    def _resolve_request_problem(payload: Any) -> str | None:
        """The ResolveRequest schema of docs/platform-api.yaml, checked by hand; names the field."""
        if not isinstance(payload, dict):
            return "body: a JSON object is required"
        # Unknown fields are ignored: docs/platforms.md says later versions may add some.
        if payload.get("type") != "content.resolve":
            return "type: must be 'content.resolve'"
        location = payload.get("location")
        if not isinstance(location, str) or not location or len(location) > 2048:
            return "location: a string of 1 to 2048 characters is required"
        return None

    def _item(self, environ: Environ, media: Media) -> dict[str, Any]:
        item: dict[str, Any] = {"id": media.id, "url": self.media_url(environ, media.id),
                                "content_type": media.content_type, "size": media.file.stat().st_size}
        if media.uploader is not None:
            item["uploader"] = media.uploader
        if media.posted_at is not None:
            item["posted_at"] = media.posted_at
        return item

    # --- media -----------------------------------------------------------------------------------------------

    def _base(self, environ: Environ) -> str:
        if self.media_base:
            return self.media_base
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{self._port(environ)}"
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"

    def _signature(self, media_id: str, expires: int) -> str:
        digest = hmac.new(self.url_key, f"{media_id}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def media_query(self, media_id: str) -> str:
        expires = int(time.time()) + self.url_ttl
        return urlencode({"exp": expires, "sig": self._signature(media_id, expires)})

    def media_url(self, environ: Environ, media_id: str, base: str | None = None) -> str:
        return f"{base or self._base(environ)}/media/{media_id}?{self.media_query(media_id)}"

    def _url_valid(self, media_id: str, query: str) -> bool:
        params = parse_qs(query)
        expires, signature = params.get("exp", [""])[0], params.get("sig", [""])[0]
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(signature.encode(), self._signature(media_id, int(expires)).encode())

    def download(self, media_id: str, environ: Environ, start_response: StartResponse, *,
                 head: bool = False) -> Iterable[bytes]:
        headers = _request_headers(environ)
        entry: dict[str, Any] = {"at": time.time(), "media_id": media_id, "method": "HEAD" if head else "GET",
                                 "user_agent": headers.get("user-agent"), "behaviour": None, "status": None,
                                 "bytes_sent": 0, "ended": None,
                                 "credentials": bool(headers.get("authorization") or headers.get("cookie"))}
        with self.lock:
            self.log["media"].append(entry)
            found = self.media.get(media_id)
        if found is None:
            entry["status"] = 404
            return _error(start_response, 404, "no such media")
        post, media = found
        entry["behaviour"] = (media.behaviour or {}).get("kind")
        if not self._url_valid(media_id, environ.get("QUERY_STRING", "")):
            entry["status"] = 403
            return _error(start_response, 403, "this download link is not valid or has expired")
        if post.removed:
            entry["status"] = 410
            return _error(start_response, 410, "this content has been removed")
        shared = self._common(media.behaviour, media, environ, start_response, entry)
        if shared is not None:
            return shared
        kind = entry["behaviour"]
        behaviour = media.behaviour or {}
        port = self._port(environ)
        if kind == "redirect_elsewhere":
            return self._redirect(start_response, entry, f"http://elsewhere.test:{port}/media/x")
        if kind == "redirect_localhost":
            target = str(behaviour.get("to") or media_id)
            return self._redirect(start_response, entry,
                                  self.media_url(environ, target, base=f"http://localhost:{port}"))
        data = media.file.read_bytes()
        entry["status"] = 200
        if kind == "html_as_jpeg":
            return self._bytes(start_response, entry, HTML_PAGE, "image/jpeg", head)
        if kind == "jpeg_as_html":
            return self._bytes(start_response, entry, data, "text/html; charset=utf-8", head)
        if kind == "endless":
            start_response("200 OK", [("Content-Type", "image/jpeg")])
            if head:
                return []
            chunk = int(behaviour.get("chunk", 65536))
            return self._stream(entry, data[:chunk], bytes(chunk), float(behaviour.get("interval", 0)),
                                float(behaviour.get("max_seconds", 300)))
        if kind == "huge_length":
            start_response("200 OK", [("Content-Type", "image/jpeg"), ("Content-Length", str(HUGE_LENGTH))])
            if head:
                return []
            return self._stream(entry, data[:16], b"\0", float(behaviour.get("interval", 0.5)),
                                float(behaviour.get("max_seconds", 300)))
        return self._bytes(start_response, entry, data, media.content_type, head)

    @staticmethod
    def _redirect(start_response: StartResponse, entry: dict[str, Any], target: str) -> list[bytes]:
        entry["status"] = 302
        entry["redirect_to"] = target
        return _error(start_response, 302, "moved", [("Location", target)])

    @staticmethod
    def _bytes(start_response: StartResponse, entry: dict[str, Any], data: bytes, content_type: str,
               head: bool) -> list[bytes]:
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(data)))])
        if head:
            entry["ended"] = "complete"
            return []
        entry["bytes_sent"] = len(data)
        entry["ended"] = "complete"
        return [data]

    @staticmethod
    def _stream(entry: dict[str, Any], first: bytes, then: bytes, interval: float,
                max_seconds: float) -> Iterator[bytes]:
        """``first``, then ``then`` every ``interval`` s until the client hangs up (the server then closes this
        generator) or ``max_seconds`` pass. ``entry`` records the bytes handed to the server and how it ended."""
        deadline = time.monotonic() + max_seconds
        entry["ended"] = "streaming"
        try:
            entry["bytes_sent"] += len(first)
            yield first
            while time.monotonic() < deadline:
                if interval:
                    time.sleep(interval)
                entry["bytes_sent"] += len(then)
                yield then
            entry["ended"] = "max_seconds"
        finally:
            if entry["ended"] == "streaming":
                entry["ended"] = "client_gone"

    # --- webhooks --------------------------------------------------------------------------------------------

    def hooks(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        headers = _request_headers(environ)
        entry: dict[str, Any] = {
            "at": time.time(), "webhook_id": headers.get("webhook-id"),
            "idempotency_key_header": headers.get("idempotency-key"), "signature_verified": False,
            "user_agent": headers.get("user-agent"), "event": None, "location": None, "idempotency_key": None,
            "reason": None, "sent_at": None, "statement": None, "applied": False, "replay": False,
            "status": None, "problems": []}
        with self.lock:
            self.log["hooks"].append(entry)
        body = _read_body(environ)
        if body is None:
            entry["status"] = 413
            return _error(start_response, 413, "the request body is over 1 MiB")
        why = self._verify_signature(body, headers)
        if why is not None:
            entry["status"] = 401
            return _error(start_response, 401, f"signature: {why}")
        entry["signature_verified"] = True
        shared = self._common(self.hooks_behaviour, None, environ, start_response, entry)
        if shared is not None:
            return shared
        try:
            payload = json.loads(body)
        except ValueError:
            entry["status"] = 400
            return _error(start_response, 400, "body: not JSON")
        if not isinstance(payload, dict):
            entry["status"] = 400
            return _error(start_response, 400, "body: a JSON object is required")
        for name in ("event", "location", "idempotency_key", "reason", "sent_at", "statement"):
            entry[name] = payload.get(name)
        message_id = entry["webhook_id"]
        problem = self._hook_problem(payload, message_id, entry["idempotency_key_header"])
        if problem:
            entry["status"] = 422 if problem.startswith("event") else 400
            return _error(start_response, entry["status"], problem)
        self._note_hook_problems(payload, entry)
        with self.lock:
            if message_id in self.handled:
                entry["replay"] = True
                entry["status"] = 200
                return _json_response(start_response, 200, {"done": "already", "event": self.handled[message_id]})
            post_id = post_id_of(payload["location"])
            post = self.posts.get(post_id) if post_id else None
            if post is None:
                entry["status"] = 404
                return _error(start_response, 404, "no content at this location")
            if payload["event"] == "content.remove":
                post.removed = True
                post.statement = payload.get("statement")
            else:
                post.removed = False
                post.statement = None
            self.handled[message_id] = payload["event"]
            entry["applied"] = True
            entry["status"] = 200
        return _json_response(start_response, 200, {"done": payload["event"]})

    @staticmethod
    def _hook_problem(payload: dict[str, Any], message_id: str, header_key: str | None) -> str | None:
        if payload.get("event") not in ("content.remove", "content.restore"):
            return f"event: {payload.get('event')!r} is not content.remove or content.restore"
        if not isinstance(payload.get("location"), str) or not payload["location"]:
            return "location: a string is required"
        if payload.get("idempotency_key") != message_id:
            return "idempotency_key: must equal the webhook-id header"
        if header_key is not None and header_key != message_id:
            return "Idempotency-Key: must equal the webhook-id header"
        return None

    @staticmethod
    def _note_hook_problems(payload: dict[str, Any], entry: dict[str, Any]) -> None:
        """Deviations from docs/webhooks.md that a platform would tolerate; recorded for the tests to assert."""
        problems = entry["problems"]
        post_id = post_id_of(payload["location"])
        if post_id and payload["location"] != canonical_location(post_id):
            problems.append(f"location {payload['location']!r} is not in canonical form")
        if entry["idempotency_key_header"] is None:
            problems.append("no Idempotency-Key header")
        if not isinstance(payload.get("reason"), str) or not payload["reason"]:
            problems.append("no reason")
        if not isinstance(payload.get("sent_at"), str):
            problems.append("no sent_at")
        statement = payload.get("statement")
        if payload["event"] == "content.remove" and not isinstance(statement, dict):
            problems.append("a removal without a statement object")
        if payload["event"] == "content.restore" and statement is not None:
            problems.append("a restoration whose statement is not null")
        if isinstance(statement, dict) and "@" in json.dumps(statement):
            problems.append("the statement contains an '@' (personal data?)")

    # --- test-only endpoints ---------------------------------------------------------------------------------

    def _test_log(self, start_response: StartResponse) -> list[bytes]:
        with self.lock:
            snapshot = json.loads(json.dumps(self.log))
        return _json_response(start_response, 200, snapshot)

    def _test_state(self, start_response: StartResponse) -> list[bytes]:
        with self.lock:
            posts = {post.id: "removed" if post.removed else "live" for post in self.posts.values()}
            statements = {post.id: post.statement for post in self.posts.values() if post.statement is not None}
            handled = dict(self.handled)
        return _json_response(start_response, 200, {"posts": posts, "statements": statements, "handled": handled})

    def _test_add_post(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        body = _read_body(environ)
        try:
            post = parse_post(json.loads(body or b"null"))
            with self.lock:
                self._add(post)
        except (StateError, ValueError) as exc:
            return _error(start_response, 400, str(exc))
        return _json_response(start_response, 201, {"id": post.id, "location": canonical_location(post.id),
                                                    "media": [media.id for media in post.media]})

    def _test_hooks(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        body = _read_body(environ)
        try:
            payload = json.loads(body or b"null")
            if not isinstance(payload, dict):
                raise StateError("body: an object with 'behaviour'")
            behaviour = _check_behaviour(payload.get("behaviour"), HOOKS_KINDS, "behaviour")
        except (StateError, ValueError) as exc:
            return _error(start_response, 400, str(exc))
        with self.lock:
            self.hooks_behaviour = behaviour
            self.hooks_calls = 0
        return _json_response(start_response, 200, {"behaviour": behaviour})


_platform: Platform | None = None
_platform_lock = threading.Lock()


def application(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI entry point: builds the platform from the environment on the first request."""
    global _platform
    if _platform is None:
        with _platform_lock:
            if _platform is None:
                try:
                    _platform = Platform.from_environment()
                except (StateError, ValueError, OSError) as exc:
                    return _error(start_response, 500, f"the loopback platform cannot start: {exc}")
    return _platform(environ, start_response)
