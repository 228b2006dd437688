"""Shared fixtures: personas by role, API clients, generated (safe) images, demo data."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from PIL import Image
from rest_framework.test import APIClient

from moderation.roles import ADMIN, MODERATOR, SENIOR, TRIAGE, roles_sync

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A ``shared_data`` test skips in a user's clone, which has no ../shared; in CI
    (``TAKEDOWN_REQUIRE_SERVICES=1``) a missing ../shared fails it instead, so a skip never counts as a pass."""
    if item.get_closest_marker("shared_data") and not SHARED_DATA.is_dir():
        if settings.TAKEDOWN_REQUIRE_SERVICES:
            pytest.fail(f"{SHARED_DATA} is missing: CI must have ../shared beside the checkout")
        pytest.skip(f"{SHARED_DATA} is not present in this checkout (CI has it)")


# Fixtures through which a test reaches the database (pytest-django refuses database access to any other test).
_DATABASE_FIXTURES = frozenset({"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
                                "live_server"})
# Markers of tests whose processes or servers use the configured database without a pytest-django fixture.
_DATABASE_MARKERS = ("django_db", "celery_worker", "instances", "atproto", "browser", "postgres")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``TAKEDOWN_TEST_DATABASE_ONLY=1`` (CI's second pass, on PostgreSQL), keep only the tests that reach
    the database: the rest (decoders, hashes, detection, pure functions) cannot tell one database from another
    and ran in the first pass already."""
    if os.environ.get("TAKEDOWN_TEST_DATABASE_ONLY") != "1":
        return
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        reaches = (any(item.get_closest_marker(name) for name in _DATABASE_MARKERS)
                   or not _DATABASE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())))
        (kept if reaches else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def _private_media_root() -> Iterator[None]:
    root = Path(settings.MEDIA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    yield
    if root.name.startswith("test-media-"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _exchange_signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """This instance's Ed25519 exchange key for every test (make run generates var/exchange_signing_key.pem)."""
    from exchange.signing import generate_private_key_pem

    path = tmp_path_factory.mktemp("exchange-key") / "exchange_signing_key.pem"
    path.write_bytes(generate_private_key_pem())
    previous = settings.TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE
    settings.TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE = str(path)
    yield
    settings.TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE = previous


def redis_flushed_or_skip(url: str, hint: str = "") -> Any:
    """A client of the Redis database at ``url``, emptied for this test; skip without Redis (fail in CI)."""
    import redis

    server = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        server.ping()
    except redis.RedisError as exc:
        message = f"Redis is not reachable at {url} ({exc}){'; ' + hint if hint else ''}"
        if settings.TAKEDOWN_REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    server.flushdb()
    return server


def make_image_bytes(seed: int = 0, size: tuple[int, int] = (256, 192), fmt: str = "JPEG") -> bytes:
    """A smooth random picture (blobs of colour), different for each seed. Safe for work by construction."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB").resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def image_bytes() -> Callable[..., bytes]:
    return make_image_bytes


def _user(username: str, role: str | None) -> User:
    roles_sync()
    user = User.objects.create_user(username=username, password="pw-" + username)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def triage_user(db: Any) -> User:
    return _user("tina-triage", TRIAGE)


@pytest.fixture
def moderator(db: Any) -> User:
    return _user("mo-moderator", MODERATOR)


@pytest.fixture
def other_moderator(db: Any) -> User:
    return _user("max-moderator", MODERATOR)


@pytest.fixture
def senior(db: Any) -> User:
    return _user("sam-senior", SENIOR)


@pytest.fixture
def admin_user(db: Any) -> User:
    return _user("ada-admin", ADMIN)


# Commands that change banks, partners or API keys name who runs them; with the admin_user fixture:
AS_ADMIN = ("--user", "ada-admin")


@pytest.fixture
def outsider(db: Any) -> User:
    return _user("olly-outsider", None)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    def make(user: User) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client
    return make


@pytest.fixture
def demo(db: Any) -> Any:
    from moderation.services.demo import seed_demo

    return seed_demo()


def notice_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "reporter_name": "Alex Example",
        "reporter_email": "alex@example.org",
        "relationship": "self",
        "locations": ["demo://content/3"],
        "statement": "This is an intimate image of me, made with AI and posted without my consent.",
        "good_faith": True,
        "signature": "Alex Example",
        "adult_confirmed": True,
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def platform_key(db: Any) -> str:
    from moderation.services.api_keys import api_key_create

    _row, key = api_key_create(kind="platform", name="host platform")
    return key


# The loopback host platform (tests/platform_server), for tests of the "http" platform.
from tests.platform_server.fixtures import loopback_platform  # noqa: E402, F401
