"""Every console view and every API endpoint against every role: anonymous, outsider, triage, moderator,
senior moderator, admin. "allowed" means the request got past the role check (any answer but a login
redirect, 401 or 403); the services behind the views check the same roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from moderation.models import Decision, Queue, ReporterMute, RoutingRule
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
    # Deciding the cases ticked in the queue (moderation/views/console.bulk_decide): whoever decides cases.
    Endpoint("bulk-decide", "post", "/console/queue/decide", frozenset(DECIDERS),
             (("tasks", "{task}"), ("decision", "no_violation"), ("reason", "not_intimate"))),
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
    # Queues and routing rules (moderation/views/console_queues.py): the admin role only.
    Endpoint("routing", "get", "/console/routing/", frozenset({ADMIN})),
    Endpoint("routing-rule-new", "get", "/console/routing/rule/new", frozenset({ADMIN})),
    Endpoint("routing-rule", "post", "/console/routing/rule/{rule}", frozenset({ADMIN}),
             (("name", "renamed"), ("order", "5"), ("queue", "{queue}"))),
    Endpoint("routing-rule-delete", "post", "/console/routing/rule/{rule}/delete", frozenset({ADMIN})),
    Endpoint("routing-queue-new", "get", "/console/routing/queue/new", frozenset({ADMIN})),
    Endpoint("routing-queue", "post", "/console/routing/queue/{queue}", frozenset({ADMIN}),
             (("name", "Renamed"), ("position", "5"))),
    # Holds and escalation to a named senior (moderation/views/console_queues.py).
    Endpoint("hold", "post", "/console/case/{task}/hold", frozenset(DECIDERS),
             (("until", "2099-01-01T10:00"), ("reason", "waiting"))),
    Endpoint("hold-lift", "post", "/console/case/{task}/hold/lift", frozenset(DECIDERS)),
    Endpoint("escalate-to", "post", "/console/case/{task}/escalate-to", frozenset(STAFF), (("note", "look"),)),
    # Muted reporters: senior moderators and admins.
    Endpoint("mutes", "get", "/console/mutes", frozenset(LEADS)),
    Endpoint("unmute", "post", "/console/mutes/{mute}/unmute", frozenset(LEADS)),
    Endpoint("mute-reporter", "post", "/console/case/{task}/mute-reporter", frozenset(LEADS), (("reason", "abuse"),)),
    # Delayed takedowns: whoever decides cases.
    Endpoint("takedown-later", "post", "/console/case/{task}/takedown-later", frozenset(DECIDERS),
             (("reason", "ncii"), ("effective_at", "2099-01-01T10:00"))),
    Endpoint("takedown-now", "post", "/console/decision/{decision}/takedown-now", frozenset(DECIDERS)),
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
    return {"task": task.pk, "media": media.pk, "proposal": proposal.pk, "item": task.report.items.get().pk,
            "rule": RoutingRule.objects.first().pk, "queue": Queue.objects.first().pk,  # type: ignore[union-attr]
            "mute": ReporterMute.objects.create(email_hash="0" * 64, reason="matrix", muted_by=proposer).pk,
            "decision": Decision.objects.create(task=other, report=other.report, outcome="takedown", reason="ncii",
                                                effective_at=timezone.now() + timedelta(days=1)).pk}


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
    response = getattr(client, endpoint.method)(path, {k: v.format(**objects) for k, v in endpoint.data})
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
    path = endpoint.path.format(task=999999, media=999999, proposal=999999, item=999999, rule=999999, queue=999999,
                                mute=999999, decision=999999)
    response = getattr(client, endpoint.method)(path, dict(endpoint.data))
    assert response.status_code == 403


# --- The admin pages (moderation/views/admin_console.py): the admin role only --------------------------------
ADMINS = frozenset({ADMIN})
ADMIN_CONSOLE = [
    Endpoint("index", "get", "/console/admin/", ADMINS),
    Endpoint("banks", "get", "/console/admin/banks", ADMINS),
    Endpoint("bank", "get", "/console/admin/banks/{bank}", ADMINS),
    Endpoint("bank-settings", "post", "/console/admin/banks/{bank}/settings", ADMINS,
             (("enabled", "on"), ("on_stream_match", "case"))),
    Endpoint("bank-import", "post", "/console/admin/banks/{bank}/import", ADMINS),
    Endpoint("bank-export", "get", "/console/admin/banks/{bank}/export", ADMINS),
    Endpoint("api-keys", "get", "/console/admin/keys", ADMINS),
    Endpoint("api-key-create", "post", "/console/admin/keys/create", ADMINS,
             (("kind", "platform"), ("name", "host"))),
    Endpoint("api-key-revoke", "post", "/console/admin/keys/{key}/revoke", ADMINS),
    Endpoint("users", "get", "/console/admin/users", ADMINS),
    Endpoint("user-role", "post", "/console/admin/users/{user}/role", ADMINS,
             (("role", "triage"), ("change", "add"))),
    Endpoint("user-active", "post", "/console/admin/users/{user}/active", ADMINS, (("active", "0"),)),
]


# The partner pages (exchange/console.py), namespace console_partners.
PARTNER_PAGES = [
    Endpoint("partners", "get", "/console/admin/partners/", ADMINS),
    Endpoint("partner-add", "post", "/console/admin/partners/add", ADMINS,
             (("name", "newcomer"), ("organisation", "Newcomer Ltd"), ("trust_level", "low"),
              ("auto_action", "queue_for_review"))),
    Endpoint("partner", "get", "/console/admin/partners/{partner}", ADMINS),
    Endpoint("partner-policy", "post", "/console/admin/partners/{partner}/policy", ADMINS,
             (("trust_level", "low"), ("auto_action", "ignore"))),
    Endpoint("partner-key", "post", "/console/admin/partners/{partner}/keys", ADMINS, (("feedback", "on"),)),
    Endpoint("key-rotate", "post", "/console/admin/partners/keys/{partner_key}/rotate", ADMINS),
]
ADMIN_CONSOLE += PARTNER_PAGES


def test_the_matrix_names_every_admin_page() -> None:
    resolver = get_resolver()
    for namespace, endpoints in (("console_admin", [e for e in ADMIN_CONSOLE if e not in PARTNER_PAGES]),
                                 ("console_partners", PARTNER_PAGES)):
        _ns, pages = resolver.namespace_dict[namespace]
        names = {name for name in pages.reverse_dict if isinstance(name, str)}
        assert names == {e.name for e in endpoints}, namespace


@pytest.fixture
def admin_objects() -> dict[str, int]:
    from exchange.partners import partner_create, partner_key_create
    from hashing.models import Bank
    from moderation.services.api_keys import api_key_create

    bank = Bank.objects.create(name="matrix-bank")
    key, _secret = api_key_create(kind="platform", name="matrix host")
    partner = partner_create(name="matrix-partner", organisation="Partner Ltd")
    partner_key, _secret = partner_key_create(partner=partner, feedback=True)
    return {"bank": bank.pk, "key": key.pk, "user": user_with_role("bystander", None).pk, "partner": partner.pk,
            "partner_key": partner_key.pk}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ADMIN_CONSOLE, ids=lambda e: e.name)
def test_admin_page_lets_in_exactly_the_admin_role(endpoint: Endpoint, role: str, admin_objects: dict[str, int],
                                                   client: Client) -> None:
    user = _user(role)
    if user is not None:
        client.force_login(user)
    response = getattr(client, endpoint.method)(endpoint.path.format(**admin_objects), dict(endpoint.data))
    assert _allowed(response) == (role in endpoint.allowed), (response.status_code, response.get("Location"))
    if role == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("endpoint", [e for e in ADMIN_CONSOLE if "{" in e.path], ids=lambda e: e.name)
def test_a_senior_cannot_tell_which_banks_keys_or_users_exist(endpoint: Endpoint, client: Client) -> None:
    client.force_login(user_with_role("nosy-senior", SENIOR))
    ids = dict.fromkeys(("bank", "key", "user", "partner", "partner_key"), 999999)
    response = getattr(client, endpoint.method)(endpoint.path.format(**ids), dict(endpoint.data))
    assert response.status_code == 403
