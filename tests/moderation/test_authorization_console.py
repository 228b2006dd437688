"""Every console view and every API endpoint against every role: anonymous, outsider, triage, moderator,
senior moderator, admin. "allowed" means the request got past the role check (any answer but a login
redirect, 401 or 403); the services behind the views check the same roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import get_resolver
from rest_framework.test import APIClient

from moderation.roles import ADMIN, MODERATOR, SENIOR, TRIAGE
from moderation.services import decisions
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "outsider", TRIAGE, MODERATOR, SENIOR, ADMIN]
STAFF = {TRIAGE, MODERATOR, SENIOR, ADMIN}
DECIDERS = {MODERATOR, SENIOR, ADMIN}
LEADS = {SENIOR, ADMIN}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # with {task}, {media}, {proposal} placeholders
    allowed: frozenset[str]
    data: tuple[tuple[str, str], ...] = ()


CONSOLE = [
    Endpoint("queue", "get", "/console/", frozenset(STAFF)),
    Endpoint("next", "post", "/console/next", frozenset(STAFF)),
    Endpoint("case", "get", "/console/case/{task}", frozenset(STAFF)),
    Endpoint("claim", "post", "/console/case/{task}/claim", frozenset(STAFF)),
    Endpoint("decide", "post", "/console/case/{task}/decide", frozenset(DECIDERS),
             (("decision", "no_violation"), ("reason", "not_intimate"))),
    Endpoint("release", "post", "/console/case/{task}/release", frozenset(STAFF)),
    Endpoint("escalate", "post", "/console/case/{task}/escalate", frozenset(STAFF), (("note", "please look"),)),
    Endpoint("comment", "post", "/console/case/{task}/comment", frozenset(STAFF), (("note", "a comment"),)),
    Endpoint("item-refetch", "post", "/console/item/{item}/refetch", frozenset(DECIDERS)),
    Endpoint("proposal-confirm", "post", "/console/proposal/{proposal}/confirm", frozenset(LEADS)),
    Endpoint("proposal-reject", "post", "/console/proposal/{proposal}/reject", frozenset(LEADS),
             (("note", "no"),)),
    Endpoint("media", "get", "/console/media/{media}", frozenset(DECIDERS)),
    Endpoint("media-reveal", "post", "/console/media/{media}/reveal", frozenset(DECIDERS)),
    Endpoint("preferences", "get", "/console/preferences", frozenset(STAFF)),
    Endpoint("exposure", "get", "/console/exposure", frozenset(STAFF)),
    Endpoint("dashboard", "get", "/console/dashboard", frozenset(LEADS)),
    Endpoint("audit", "get", "/console/audit", frozenset(LEADS)),
    Endpoint("audit-csv", "get", "/console/audit.csv", frozenset(LEADS)),
    Endpoint("templates", "get", "/console/templates", frozenset({ADMIN})),
]

EVERYONE = frozenset(ROLES)
API = [
    Endpoint("api-report-create", "post", "/api/v1/reports", EVERYONE),
    Endpoint("api-report-status", "get", "/api/v1/reports/TD-0000-0000", EVERYONE),
    Endpoint("api-scan", "post", "/api/v1/scan", frozenset()),  # a platform key only, never a person
    Endpoint("api-queue", "get", "/api/v1/queue", frozenset(STAFF)),
    Endpoint("api-claim", "post", "/api/v1/queue/{task}/claim", frozenset(STAFF)),
    Endpoint("api-decide", "post", "/api/v1/queue/{task}/decide", frozenset(DECIDERS),
             (("decision", "no_violation"), ("reason", "not_intimate"), ("note", ""))),
]


def test_the_matrix_names_every_console_view() -> None:
    resolver = get_resolver()
    _ns, console = resolver.namespace_dict["console"]
    names = {name for name in console.reverse_dict if isinstance(name, str)}
    assert names == {e.name for e in CONSOLE}


@pytest.fixture
def objects(image_bytes: Any) -> dict[str, int]:
    task = make_case(pdq="f" * 64)
    media = task.report.items.get().media
    from django.core.files.base import ContentFile

    media.file.save(f"{media.sha256}.jpg", ContentFile(image_bytes(1)), save=True)
    proposer = user_with_role("proposer", MODERATOR)
    other = make_case()
    proposal = decisions.decision_propose(task_id=other.pk, user=proposer, outcome="child_safety",
                                       reason="possible_minor")
    return {"task": task.pk, "media": media.pk, "proposal": proposal.pk, "item": task.report.items.get().pk}


def _user(role: str) -> User | None:
    if role == "anonymous":
        return None
    return user_with_role(f"who-{role}", None if role == "outsider" else role)


def _allowed(response: Any) -> bool:
    if response.status_code in (401, 403):
        return False
    return not (response.status_code == 302 and "/accounts/login/" in response["Location"])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", CONSOLE, ids=lambda e: e.name)
def test_console_view_lets_in_exactly_its_roles(endpoint: Endpoint, role: str, objects: dict[str, int],
                                                client: Client) -> None:
    user = _user(role)
    if user is not None:
        client.force_login(user)
    path = endpoint.path.format(**objects)
    if endpoint.name == "media" and user is not None:  # media links are signed for one user (case page)
        from moderation.services.media import media_signed_url

        path = media_signed_url(media_id=objects["media"], user_id=user.pk)
    response = getattr(client, endpoint.method)(path, dict(endpoint.data))
    assert _allowed(response) == (role in endpoint.allowed), (response.status_code, response.get("Location"))
    if role == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", API, ids=lambda e: e.name)
def test_api_endpoint_lets_in_exactly_its_roles(endpoint: Endpoint, role: str, objects: dict[str, int]) -> None:
    client = APIClient()
    user = _user(role)
    if user is not None:
        client.force_authenticate(user)
    path = endpoint.path.format(**objects)
    response = getattr(client, endpoint.method)(path, dict(endpoint.data), format="json")
    assert _allowed(response) == (role in endpoint.allowed), (response.status_code, response.content[:200])


@pytest.mark.parametrize("endpoint", [e for e in CONSOLE if "{" in e.path], ids=lambda e: e.name)
def test_an_outsider_cannot_tell_which_ids_exist(endpoint: Endpoint, client: Client) -> None:
    client.force_login(user_with_role("nosy", None))
    path = endpoint.path.format(task=999999, media=999999, proposal=999999, item=999999)
    response = getattr(client, endpoint.method)(path, dict(endpoint.data))
    assert response.status_code == 403
