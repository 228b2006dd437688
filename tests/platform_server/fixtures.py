"""The ``loopback_platform`` fixture: a real host platform process on 127.0.0.2, for tests of the ``http``
platform and the webhook enforcer.

Use it from any test module with ``from tests.platform_server.fixtures import loopback_platform`` (tests in
tests/platform_server get it from its conftest). It is **function scoped**: each test gets a fresh process
(about a second to start), so counters, removals and the log never leak between tests. For another scope or
the bearer scheme, use :func:`running_platform` in your own fixture.

The platform starts with post ``1`` (two generated JPEGs, uploader ``user-1``) from its state file; add more
with :meth:`LoopbackPlatform.add_post` while it runs. :meth:`LoopbackPlatform.takedown_env` gives the
settings docs/platforms.md asks a platform to hand to Takedown.
"""

from __future__ import annotations

import io
import json
import uuid
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw
from standardwebhooks import Webhook

from tests.platform_server.app import LOCATION_HOSTS, canonical_location
from tests.platform_server.runner import HOST, ServerProcess, new_secret, run

DOCS = Path(__file__).resolve().parents[2] / "docs"
DEFAULT_POSTED_AT = "2026-01-02T03:04:05Z"
ImageLike = Image.Image | bytes


def make_image(seed: int = 0, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A picture of coloured rectangles on a gradient, different for each seed; safe for work by construction."""
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    state = seed * 2654435761 % 2**32 or 1
    for _ in range(6):
        values = []
        for _ in range(7):
            state = (state * 1103515245 + 12345) % 2**31
            values.append(state)
        x0, y0 = values[0] % width, values[1] % height
        x1, y1 = x0 + 20 + values[2] % (width // 2), y0 + 20 + values[3] % (height // 2)
        draw.rectangle((x0, y0, x1, y1), fill=(values[4] % 256, values[5] % 256, values[6] % 256))
    return image


def _encode(image: ImageLike, content_type: str | None) -> tuple[bytes, str, str]:
    """The bytes, content type and file suffix of an image (a PIL image is saved as JPEG, or PNG with alpha)."""
    if isinstance(image, Image.Image):
        fmt = "PNG" if image.mode in ("RGBA", "LA", "P") else "JPEG"
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        return buffer.getvalue(), content_type or Image.MIME[fmt], fmt.lower()
    try:
        with Image.open(io.BytesIO(image)) as opened:
            fmt = opened.format or ""
    except Exception:
        fmt = ""
    return image, content_type or Image.MIME.get(fmt, "application/octet-stream"), (fmt or "bin").lower()


def post_entry(folder: Path, post_id: str | int, images: Sequence[ImageLike], *, uploader: str | None = "user-1",
               posted_at: str | None = DEFAULT_POSTED_AT, behaviour: dict[str, Any] | None = None,
               media_behaviour: dict[str, Any] | Sequence[dict[str, Any] | None] | None = None,
               content_type: str | None = None, removed: bool = False) -> dict[str, Any]:
    """A post as the state file (and ``POST /_test/posts``) describe it; writes its media files to ``folder``.

    ``media_behaviour`` is one behaviour for every media item, or a list with one per item.
    """
    post_id = str(post_id)
    if isinstance(media_behaviour, dict) or media_behaviour is None:
        behaviours: list[dict[str, Any] | None] = [media_behaviour] * len(images)
    else:
        behaviours = list(media_behaviour)
        if len(behaviours) != len(images):
            raise ValueError("media_behaviour: one behaviour per image")
    media = []
    for index, (image, item_behaviour) in enumerate(zip(images, behaviours, strict=True)):
        data, mime, suffix = _encode(image, content_type)
        path = folder / f"post-{post_id}-{index}-{uuid.uuid4().hex[:8]}.{suffix}"
        path.write_bytes(data)
        media.append({"id": f"m-{post_id}-{index}", "file": str(path), "content_type": mime,
                      "behaviour": item_behaviour})
    return {"id": post_id, "uploader": uploader, "posted_at": posted_at, "behaviour": behaviour,
            "removed": removed, "media": media}


@dataclass
class LoopbackPlatform:
    """A running loopback platform: its addresses, its secret, and helpers to set it up and read what it saw."""

    server: ServerProcess
    secret: str
    folder: Path
    auth: str = "signature"
    token: str | None = None

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def resolve_url(self) -> str:
        return f"{self.base_url}/takedown/resolve"

    @property
    def hooks_url(self) -> str:
        return f"{self.base_url}/takedown/hooks"

    @staticmethod
    def location(post_id: str | int) -> str:
        """The canonical location of a post: https://platform.test/p/<id>."""
        return canonical_location(str(post_id))

    def client(self, timeout: float = 5.0) -> httpx.Client:
        """An httpx client that ignores proxy settings and does not follow redirects."""
        return httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        with self.client() as client:
            answer = client.request(method, f"{self.base_url}{path}", **kwargs)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json()

    def add_post(self, post_id: str | int, images: Sequence[ImageLike] = (), **options: Any) -> list[str]:
        """Adds (or replaces) a post while the platform runs; returns its media ids (``m-<post>-<n>``).

        Options: ``uploader``, ``posted_at``, ``behaviour`` (resolve), ``media_behaviour`` (one, or one per
        image), ``content_type`` (overrides the sniffed type), ``removed``. No images: one generated JPEG.
        """
        images = list(images) or [make_image(zlib.crc32(str(post_id).encode()) % 1000)]
        entry = post_entry(self.folder, post_id, images, **options)
        return list(self._call("POST", "/_test/posts", json=entry)["media"])

    def set_hooks_behaviour(self, behaviour: dict[str, Any] | None) -> None:
        """How the webhook receiver answers (``status``, ``fail_first``, ``slow_first_byte``); None: normally."""
        self._call("PUT", "/_test/hooks-behaviour", json={"behaviour": behaviour})

    def log(self) -> dict[str, list[dict[str, Any]]]:
        """What happened: ``resolve``, ``media`` and ``hooks`` entries, oldest first."""
        return dict(self._call("GET", "/_test/log"))

    def clear_log(self) -> None:
        self._call("DELETE", "/_test/log")

    def state(self) -> dict[str, Any]:
        """``{"posts": {id: "live" | "removed"}, "statements": {id: statement}, "handled": {webhook-id: event}}``."""
        return dict(self._call("GET", "/_test/state"))

    def signed_headers(self, body: bytes, *, msg_id: str | None = None, timestamp: datetime | None = None,
                       secret: str | None = None) -> dict[str, str]:
        """Standard Webhooks headers for ``body``, as Takedown sends them (docs/platforms.md, "Resolve")."""
        msg_id = msg_id or f"resolve-{uuid.uuid4().hex[:16]}"
        timestamp = timestamp or datetime.now(UTC)
        signature = Webhook(secret or self.secret).sign(msg_id, timestamp, body)
        return {"webhook-id": msg_id, "webhook-timestamp": str(int(timestamp.timestamp())),
                "webhook-signature": signature}

    def resolve(self, location: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> httpx.Response:
        """POSTs a resolve request the way docs/platforms.md shows it, signed (or with the bearer token)."""
        body = body if body is not None else json.dumps({"type": "content.resolve", "location": location}).encode()
        sent = {"Content-Type": "application/json", "User-Agent": "loopback-tests"}
        if headers is None:
            if self.auth == "bearer":
                sent["Authorization"] = f"Bearer {self.token}"
            else:
                sent.update(self.signed_headers(body))
        else:
            sent.update(headers)
        with self.client(timeout) as client:
            return client.post(self.resolve_url, content=body, headers=sent)

    def send_hook(self, event: str, location: str, *, msg_id: str, reason: str = "Test removal",
                  statement: dict[str, Any] | None = None, secret: str | None = None,
                  timestamp: datetime | None = None) -> httpx.Response:
        """POSTs a takedown webhook as docs/webhooks.md describes it."""
        if statement is None and event == "content.remove":
            statement = {"puid": f"takedown-{msg_id}", "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT"}
        payload = {"event": event, "idempotency_key": msg_id, "location": location, "reason": reason,
                   "sent_at": datetime.now(UTC).isoformat(), "statement": statement}
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "loopback-tests", "Idempotency-Key": msg_id,
                   **self.signed_headers(body, msg_id=msg_id, timestamp=timestamp, secret=secret)}
        with self.client() as client:
            return client.post(self.hooks_url, content=body, headers=headers)

    def takedown_env(self) -> dict[str, str]:
        """The settings docs/platforms.md names, as environment strings, for Takedown to use this platform."""
        env = {
            "TAKEDOWN_PLATFORM": "http",
            "TAKEDOWN_HTTP_RESOLVE_URL": self.resolve_url,
            "TAKEDOWN_HTTP_LOCATION_HOSTS": ",".join(LOCATION_HOSTS),
            "TAKEDOWN_HTTP_LOCATION_PATHS": r"^/p/[A-Za-z0-9_-]+$",
            "TAKEDOWN_HTTP_MEDIA_HOSTS": self.host,
            "TAKEDOWN_FETCH_ALLOW_NETWORKS": f"{self.host}/32",
            "TAKEDOWN_HTTP_AUTH": self.auth,
            "TAKEDOWN_ENFORCER": "webhook",
            "TAKEDOWN_WEBHOOK_URL": self.hooks_url,
            "TAKEDOWN_WEBHOOK_SECRET": self.secret,
        }
        if self.token:
            env["TAKEDOWN_HTTP_TOKEN"] = self.token
        return env


@contextmanager
def running_platform(folder: Path, *, auth: str = "signature", media_base: str | None = None,
                     posts: Sequence[dict[str, Any]] | None = None, host: str = HOST,
                     port: int | None = None) -> Iterator[LoopbackPlatform]:
    """Writes a state file in ``folder``, starts the platform process, yields it, and stops it (the process
    group is killed: no leftovers). ``posts`` are :func:`post_entry` dicts; by default post ``1``."""
    folder.mkdir(parents=True, exist_ok=True)
    if posts is None:
        posts = [post_entry(folder, 1, [make_image(1), make_image(2)])]
    state_file = folder / "platform-state.json"
    state_file.write_text(json.dumps({"posts": list(posts), "hooks_behaviour": None}))
    secret = new_secret()
    token = f"token-{uuid.uuid4().hex}" if auth == "bearer" else None
    server = run(state_file, secret=secret, host=host, port=port, auth=auth, token=token, media_base=media_base)
    try:
        yield LoopbackPlatform(server=server, secret=secret, folder=folder, auth=auth, token=token)
    finally:
        server.stop()


@pytest.fixture
def loopback_platform(tmp_path: Path) -> Iterator[LoopbackPlatform]:
    """A fresh loopback platform process for this test (signature auth; post ``1`` with two JPEGs)."""
    with running_platform(tmp_path / "loopback-platform") as platform:
        yield platform


def contract_validator(schema: str = "ResolveAnswer") -> Any:
    """A jsonschema validator of a schema of docs/platform-api.yaml (JSON Schema 2020-12, as OpenAPI 3.1),
    with ``date-time`` (RFC 3339) and ``uri`` (absolute) format checks that need no optional packages."""
    import yaml
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = yaml.safe_load((DOCS / "platform-api.yaml").read_text())
    registry = Registry().with_resource("urn:platform-api",
                                        Resource.from_contents(document, default_specification=DRAFT202012))
    checker = FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if "T" not in value.upper() or not (value.endswith(("Z", "z")) or value[-6] in "+-"):
            raise ValueError(f"{value!r} is not RFC 3339 with a time zone")
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        return True

    @checker.checks("uri", raises=ValueError)
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = httpx.URL(value)
        if not parts.scheme or not parts.host:
            raise ValueError(f"{value!r} is not an absolute URI")
        return True

    return Draft202012Validator({"$ref": f"urn:platform-api#/components/schemas/{schema}"},
                                registry=registry, format_checker=checker)
