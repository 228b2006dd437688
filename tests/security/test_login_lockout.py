"""Login brute force: after AXES_FAILURE_LIMIT wrong passwords for one username from one address, that
login is locked out (django-axes) on the console login and on the admin login, right password or not."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from moderation.roles import MODERATOR
from tests.moderation.console_helpers import user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def mod() -> User:
    return user_with_role("lena-moderator", MODERATOR)  # password "pw-lena-moderator"


@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_a_login_is_locked_after_too_many_wrong_passwords(login_url: str, mod: User, settings: Any) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(login_url, {"username": mod.username, "password": "guess"}).status_code == 200
    locked = client.post(login_url, {"username": mod.username, "password": "guess"})
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    right = client.post(login_url, {"username": mod.username, "password": "pw-lena-moderator"})
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_username_and_address(mod: User, settings: Any) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attacker.post("/accounts/login/", {"username": mod.username, "password": "guess"})
    # The moderator, from their own address, still logs in: an attacker cannot lock staff out at will.
    own = Client(REMOTE_ADDR="192.0.2.10")
    response = own.post("/accounts/login/", {"username": mod.username, "password": "pw-lena-moderator"})
    assert response.status_code == 302 and own.session.get("_auth_user_id") == str(mod.pk)


def test_a_good_login_resets_the_count(mod: User, settings: Any) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/accounts/login/", {"username": mod.username, "password": "guess"})
    good = client.post("/accounts/login/", {"username": mod.username, "password": "pw-lena-moderator"})
    assert good.status_code == 302
    client.post("/accounts/logout/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/accounts/login/", {"username": mod.username, "password": "guess"}).status_code == 200


def test_behind_a_trusted_proxy_the_login_lockout_is_per_client_address(mod: User, settings: Any) -> None:
    settings.TAKEDOWN_TRUSTED_PROXIES = ["10.0.0.0/8"]
    attacker = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attacker.post("/accounts/login/", {"username": mod.username, "password": "guess"})
    # The same proxy forwards the moderator from another address: django-axes sees the client, not the proxy.
    own = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.10")
    response = own.post("/accounts/login/", {"username": mod.username, "password": "pw-lena-moderator"})
    assert response.status_code == 302 and own.session.get("_auth_user_id") == str(mod.pk)
