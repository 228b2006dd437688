"""Every URL of the site against every kind of caller: anonymous, the reporter who opened their case with
its PIN, someone with a wrong PIN, the four console roles, a platform key, a partner key, a flagger key
and a revoked key.

The URL list comes from the URL resolver, so a URL added without a row here fails
``test_every_url_has_a_row_in_the_matrix`` with the missing routes named. "Allowed" means the request got
past the access check: any answer but 401/403, a 404 standing for "no such case for you", or a redirect to a
login or to the case-lookup form.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.authtoken.models import TokenProxy

from exchange.models import HashFeedback, KeyScope, PartnerPolicy, Remote
from exchange.partners import partner_create, partner_key_create, partner_policy_set
from exchange.signing import public_key_b64
from hashing.banks import bank_add_entries
from hashing.management.commands.bank import MANAGE_BANKS as BANK_COMMAND_PERMISSION
from hashing.models import Bank, BankEntry
from moderation.models import ApiKey, AuditEvent, DemoContentItem, Partner, Queue, Report, ReporterMute, RoutingRule
from moderation.roles import ADMIN, MODERATOR, PERM_MANAGE_BANKS, SENIOR, TRIAGE
from moderation.security.crypto import encrypt_media
from moderation.security.secrets import hash_pin, new_case_number, new_pin
from moderation.services import decisions
from moderation.services.api_keys import api_key_create
from moderation.services.media import media_signed_url
from tests.conftest import make_image_bytes, notice_payload
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db

ANON, REPORTER, WRONG_PIN = "anonymous", "reporter", "wrong_pin"
PLATFORM_KEY, PARTNER_KEY, REVOKED_KEY = "platform_key", "partner_key", "revoked_key"
FLAGGER_KEY = "flagger_key"
PERSONAS = [ANON, REPORTER, WRONG_PIN, TRIAGE, MODERATOR, SENIOR, ADMIN, PLATFORM_KEY, PARTNER_KEY, FLAGGER_KEY,
            REVOKED_KEY]

EVERYONE = frozenset(PERSONAS)
NOBODY: frozenset[str] = frozenset()
STAFF = frozenset({TRIAGE, MODERATOR, SENIOR, ADMIN})
DECIDERS = frozenset({MODERATOR, SENIOR, ADMIN})
LEADS = frozenset({SENIOR, ADMIN})
ADMINS = frozenset({ADMIN})


@dataclass(frozen=True)
class Row:
    """One request to make as every persona. ``path`` may hold {task}, {media}, {proposal}, {case}, {demo}."""

    method: str
    path: str
    allowed: frozenset[str]
    data: dict[str, Any] | Callable[[], dict[str, Any]] = field(default_factory=dict)
    json: bool = False
    # For a URL whose object the matrix does not build: allowed callers get 404 (past the access check,
    # which comes before the lookup), everyone else 403 or the login page.
    missing_object: bool = False


DECISION = {"decision": "no_violation", "reason": "not_intimate", "note": ""}


def _flagger_notice() -> dict[str, Any]:
    return {**notice_payload(), "reference": f"FLAG-{uuid.uuid4().hex[:8]}"}


def _upload() -> dict[str, Any]:
    return {"file": ContentFile(make_image_bytes(7), name="upload.jpg")}


# route (as the URL resolver spells it) -> the requests to make there.
ROWS: dict[str, list[Row]] = {
    # --- Public pages of the service --------------------------------------------------------------------
    "": [Row("get", "/", EVERYONE)],
    "report/": [Row("get", "/report/", EVERYONE)],
    "status/": [Row("get", "/status/", EVERYONE)],  # the lookup form; the case itself: see test below
    "status/withdraw": [Row("post", "/status/withdraw", frozenset({REPORTER}), {"confirm": "on"})],
    "status/complete": [Row("post", "/status/complete", frozenset({REPORTER}), {"reporter_name": "A"})],
    # The appeal link is a signed capability (tested with a real statement in tests/moderation/test_appeals.py):
    # without a valid token nobody gets the form, whoever they are.
    "appeal/<str:token>/": [Row("get", "/appeal/not-a-valid-token/", NOBODY)],
    "accounts/login/": [Row("get", "/accounts/login/", EVERYONE)],
    "accounts/logout/": [Row("post", "/accounts/logout/", EVERYONE)],
    "healthz": [Row("get", "/healthz", EVERYONE)],
    "readyz": [Row("get", "/readyz", EVERYONE)],
    # Prometheus' page: 404 unless TAKEDOWN_METRICS_TOKEN or _ALLOW is set, and no login opens it
    # (tests/moderation/test_metrics.py tests the token and the allow-list).
    "metrics": [Row("get", "/metrics", NOBODY)],
    "api/schema/": [Row("get", "/api/schema/", EVERYONE)],
    "api/docs/": [Row("get", "/api/docs/", EVERYONE)],
    # --- The built-in demo host platform (public content, like the host's own site) ---------------------
    "demo/content/": [Row("get", "/demo/content/", EVERYONE)],
    "demo/content/<int:number>": [Row("get", "/demo/content/{demo}", EVERYONE)],
    "demo/content/<int:number>/file": [Row("get", "/demo/content/{demo}/file", EVERYONE)],
    # --- Django admin: only staff accounts (is_staff); no console role grants it by itself ----------------
    "admin/": [Row("get", "/admin/", NOBODY)],
    # --- Console ------------------------------------------------------------------------------------------
    "console/": [Row("get", "/console/", STAFF)],
    "console/next": [Row("post", "/console/next", STAFF)],
    "console/case/<int:task_id>": [Row("get", "/console/case/{task}", STAFF)],
    "console/case/<int:task_id>/claim": [Row("post", "/console/case/{task}/claim", STAFF)],
    "console/case/<int:task_id>/decide": [Row("post", "/console/case/{task}/decide", DECIDERS,
                                              {"decision": "no_violation", "reason": "not_intimate"})],
    "console/queue/decide": [Row("post", "/console/queue/decide", DECIDERS,
                                 {"tasks": "999999", "decision": "no_violation", "reason": "not_intimate"})],
    "console/case/<int:task_id>/release": [Row("post", "/console/case/{task}/release", STAFF)],
    "console/case/<int:task_id>/escalate": [Row("post", "/console/case/{task}/escalate", STAFF,
                                                {"note": "please look"})],
    "console/case/<int:task_id>/comment": [Row("post", "/console/case/{task}/comment", STAFF, {"note": "a note"})],
    "console/item/<int:item_id>/refetch": [Row("post", "/console/item/{item}/refetch", DECIDERS)],
    "console/proposal/<int:proposal_id>/confirm": [Row("post", "/console/proposal/{proposal}/confirm", LEADS)],
    "console/proposal/<int:proposal_id>/reject": [Row("post", "/console/proposal/{proposal}/reject", LEADS,
                                                      {"note": "no"})],
    # {media_link}: the link the case page signs for the caller (see test_media_links.py for its checks).
    "console/media/<int:media_id>": [Row("get", "{media_link}", DECIDERS)],
    "console/media/<int:media_id>/reveal": [Row("post", "/console/media/{media}/reveal", DECIDERS)],
    "console/preferences": [Row("get", "/console/preferences", STAFF)],
    "console/exposure": [Row("get", "/console/exposure", STAFF)],
    "console/dashboard": [Row("get", "/console/dashboard", LEADS)],
    "console/audit": [Row("get", "/console/audit", LEADS)],
    "console/audit.csv": [Row("get", "/console/audit.csv", LEADS)],
    "console/templates": [Row("get", "/console/templates", ADMINS)],
    # --- Queues and routing rules (moderation/views/console_queues.py): the admin role only -----------------
    "console/routing/": [Row("get", "/console/routing/", ADMINS)],
    "console/routing/rule/new": [Row("get", "/console/routing/rule/new", ADMINS)],
    "console/routing/rule/<int:rule_id>": [Row("get", "/console/routing/rule/{rule}", ADMINS)],
    "console/routing/rule/<int:rule_id>/delete": [Row("post", "/console/routing/rule/{rule}/delete", ADMINS)],
    "console/routing/queue/new": [Row("get", "/console/routing/queue/new", ADMINS)],
    "console/routing/queue/<int:queue_id>": [Row("get", "/console/routing/queue/{queue}", ADMINS)],
    "console/case/<int:task_id>/hold": [Row("post", "/console/case/{task}/hold", DECIDERS,
                                            {"until": "2099-01-01T10:00", "reason": "waiting"})],
    "console/case/<int:task_id>/hold/lift": [Row("post", "/console/case/{task}/hold/lift", DECIDERS)],
    "console/case/<int:task_id>/escalate-to": [Row("post", "/console/case/{task}/escalate-to", STAFF,
                                                   {"note": "look"})],
    "console/mutes": [Row("get", "/console/mutes", LEADS)],
    "console/mutes/<int:mute_id>/unmute": [Row("post", "/console/mutes/{mute}/unmute", LEADS)],
    "console/case/<int:task_id>/mute-reporter": [Row("post", "/console/case/{task}/mute-reporter", LEADS,
                                                     {"reason": "abuse"})],
    "console/case/<int:task_id>/takedown-later": [Row("post", "/console/case/{task}/takedown-later", DECIDERS,
                                                      {"reason": "ncii", "effective_at": "2099-01-01T10:00"})],
    "console/decision/<int:decision_id>/takedown-now": [Row("post", "/console/decision/999999/takedown-now",
                                                            DECIDERS, missing_object=True)],
    "console/appeals/": [Row("get", "/console/appeals/", STAFF)],
    "console/appeals/<int:appeal_id>": [Row("get", "/console/appeals/999999", STAFF, missing_object=True)],
    # --- Console admin pages (moderation/views/admin_console.py): the admin role only ----------------------
    # {bank}: the shared bank; {admin_key}: the revoked key (revoking it again changes nothing); {bystander}: an
    # account with no role (the admin's POSTs give it a role or deactivate it).
    "console/admin/": [Row("get", "/console/admin/", ADMINS)],
    "console/admin/banks": [Row("get", "/console/admin/banks", ADMINS)],
    "console/admin/banks/<int:bank_id>": [Row("get", "/console/admin/banks/{bank}", ADMINS)],
    "console/admin/banks/<int:bank_id>/settings": [Row("post", "/console/admin/banks/{bank}/settings", ADMINS,
                                                       {"enabled": "on", "on_stream_match": "case"})],
    "console/admin/banks/<int:bank_id>/import": [Row("post", "/console/admin/banks/{bank}/import", ADMINS,
                                                     lambda: {"file": ContentFile(b'{"algorithm": "md5", "value": "'
                                                                                  + b"c" * 32 + b'"}\n',
                                                                                  name="rows.jsonl")})],
    "console/admin/banks/<int:bank_id>/export": [Row("get", "/console/admin/banks/{bank}/export?format=csv",
                                                     ADMINS)],
    "console/admin/keys": [Row("get", "/console/admin/keys", ADMINS)],
    "console/admin/keys/create": [Row("post", "/console/admin/keys/create", ADMINS,
                                      {"kind": "platform", "name": "made in the console"})],
    "console/admin/keys/<int:key_id>/revoke": [Row("post", "/console/admin/keys/{admin_key}/revoke", ADMINS)],
    "console/admin/users": [Row("get", "/console/admin/users", ADMINS)],
    "console/admin/users/<int:user_id>/role": [Row("post", "/console/admin/users/{bystander}/role", ADMINS,
                                                   {"role": "triage", "change": "add"})],
    "console/admin/users/<int:user_id>/active": [Row("post", "/console/admin/users/{bystander}/active", ADMINS,
                                                     {"active": "0"})],
    # Partners (exchange/console.py); {partner}: the world's partner, {partner_key}: its key (rotated by the admin).
    "console/admin/partners/": [Row("get", "/console/admin/partners/", ADMINS)],
    "console/admin/partners/add": [Row("post", "/console/admin/partners/add", ADMINS,
                                       {"name": "newcomer", "organisation": "Newcomer Ltd", "trust_level": "low",
                                        "auto_action": "queue_for_review"})],
    "console/admin/partners/<int:partner_id>": [Row("get", "/console/admin/partners/{partner}", ADMINS)],
    "console/admin/partners/<int:partner_id>/policy": [Row("post", "/console/admin/partners/{partner}/policy",
                                                           ADMINS, {"trust_level": "low",
                                                                    "auto_action": "queue_for_review"})],
    "console/admin/partners/<int:partner_id>/keys": [Row("post", "/console/admin/partners/{partner}/keys", ADMINS,
                                                         {"feedback": "on"})],
    "console/admin/partners/keys/<int:key_id>/rotate": [Row("post", "/console/admin/partners/keys/{partner_key}/rotate",
                                                            ADMINS)],
    # --- API ----------------------------------------------------------------------------------------------
    "api/v1/reports": [Row("post", "/api/v1/reports", EVERYONE, notice_payload(), json=True)],
    # The reporter's status needs the case's PIN (X-Case-Pin); anyone else gets 404, as for an unknown case.
    "api/v1/reports/<str:case_number>": [Row("get", "/api/v1/reports/{case}", frozenset({REPORTER}))],
    "api/v1/scan": [Row("post", "/api/v1/scan", frozenset({PLATFORM_KEY}), _upload)],
    # A scan's result: only the key that made it (another key's scan is 404: tests/moderation/test_scan_async.py).
    "api/v1/scan/<str:scan_id>": [Row("get", "/api/v1/scan/no-such-scan", frozenset({PLATFORM_KEY}),
                                      missing_object=True)],
    "api/v1/queue": [Row("get", "/api/v1/queue", STAFF)],
    "api/v1/queue/<int:task_id>/claim": [Row("post", "/api/v1/queue/{task}/claim", STAFF, json=True)],
    "api/v1/queue/<int:task_id>/decide": [Row("post", "/api/v1/queue/{task}/decide", DECIDERS, DECISION, json=True)],
    # --- Trusted flaggers and eSafety: a flagger key files notices and reads back its own ------------------
    "api/v1/notices": [Row("post", "/api/v1/notices", frozenset({FLAGGER_KEY}), _flagger_notice, json=True)],
    # A notice is looked up by the flagger's own reference: unknown ones are 404 for the flagger.
    "api/v1/notices/<str:reference>": [Row("get", "/api/v1/notices/NO-SUCH-REF", frozenset({FLAGGER_KEY}),
                                           missing_object=True)],
    # The reporter's request for a second look at a decision (needs a decision first: tested with one in
    # tests/moderation/test_appeals_reporter.py); here it proves only the PIN holder gets past the access check.
    "status/review": [Row("post", "/status/review", frozenset({REPORTER}), {"statement": "please look again"})],
    # --- Partner exchange: a partner key scoped to read the shared bank, write and send feedback ------------
    # Pushes and feedback must also carry the partner's Ed25519 signature: unsigned, they are refused to
    # everyone, the partner's own key included (signed requests: tests/exchange/test_push_and_feedback.py).
    "api/v1/exchange/hashes": [Row("get", "/api/v1/exchange/hashes", frozenset({PARTNER_KEY})),
                               Row("post", "/api/v1/exchange/hashes", NOBODY, {"records": []}, json=True)],
    "api/v1/exchange/feedback": [Row("post", "/api/v1/exchange/feedback", NOBODY, {"feedback": []}, json=True)],
    # --- HMA-compatible routes (docs/hma.md): hashing and matching with a platform key; curation needs a key
    # with the curation scope, which no persona here has (tests/hma/test_auth.py); status is open -------------
    **{f"hma/{route}": [Row(method, f"/hma/{path}", frozenset({PLATFORM_KEY}), {}, json=method == "post")]
       for route, method, path in [("h/hash", "get", "h/hash"), ("m/raw_lookup", "get", "m/raw_lookup"),
                                   ("m/lookup", "get", "m/lookup"), ("m/compare", "post", "m/compare"),
                                   ("m/index/status", "get", "m/index/status")]},
    "hma/status": [Row("get", "/hma/status", EVERYONE)],
    "hma/status/live": [Row("get", "/hma/status/live", EVERYONE)],
    **{f"hma/{route}": [Row(method, f"/hma/{path}", NOBODY, {}, json=method in ("post", "put"))]
       for route, method, path in [
           ("c/banks", "get", "c/banks"), ("c/bank/<str:bank_name>", "get", "c/bank/ANY"),
           ("c/bank/<str:bank_name>/content", "post", "c/bank/ANY/content"),
           ("c/bank/<str:bank_name>/signal", "post", "c/bank/ANY/signal"),
           ("c/bank/<str:bank_name>/content/<int:content_id>", "get", "c/bank/ANY/content/1"),
           ("c/signal_type", "get", "c/signal_type"), ("c/signal_type/index", "get", "c/signal_type/index"),
           ("c/signal_type/<str:signal_type_name>", "put", "c/signal_type/pdq"),
           ("c/content_type", "get", "c/content_type"), ("c/exchanges", "get", "c/exchanges"),
           ("c/exchanges/apis", "get", "c/exchanges/apis"),
           ("c/exchanges/api/<str:api_name>", "get", "c/exchanges/api/x"),
           ("c/exchanges/api/<str:api_name>/schema", "get", "c/exchanges/api/x/schema"),
           ("c/exchange/<str:exchange_name>", "get", "c/exchange/X"),
           ("c/exchange/<str:exchange_name>/status", "get", "c/exchange/X/status")]},
    # HMA's development and UI pages, and anything else under the prefix, are a JSON 404 for everyone.
    "hma/^(?:dev|ui)(?:/.*)?$": [Row("get", "/hma/ui/banks", NOBODY)],
    "hma/site-map": [Row("get", "/hma/site-map", NOBODY)],
    "hma/^(?P<rest>.*)$": [Row("get", "/hma/no/such/route", NOBODY)],
}


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route == "admin/":  # the admin site's own URLs all sit behind its staff check
                yield route
                continue
            yield from _routes(list(entry.url_patterns), route)
        elif isinstance(entry, URLPattern):
            yield route


def test_every_url_has_a_row_in_the_matrix() -> None:
    routes = set(_routes(list(get_resolver().url_patterns)))
    missing = sorted(routes - set(ROWS))
    stale = sorted(set(ROWS) - routes)
    assert not missing, ("These URLs have no row in ROWS of tests/security/test_access_matrix.py; add one saying "
                         "who may use each:\n  " + "\n  ".join(missing))
    assert not stale, "These rows name URLs that no longer exist:\n  " + "\n  ".join(stale)


@dataclass
class World:
    values: dict[str, Any]
    pin: str
    case_number: str
    keys: dict[str, str]
    users: dict[str, Any]


@pytest.fixture
def world() -> World:
    task = make_case(pdq="f" * 64)
    pin, case_number = new_pin(), new_case_number()
    Report.objects.filter(pk=task.report_id).update(pin_hash=hash_pin(pin), case_number=case_number)
    media = task.report.items.get().media
    media.file.save(f"{media.sha256}.jpg", ContentFile(encrypt_media(make_image_bytes(1))), save=True)
    proposer = user_with_role("proposer", MODERATOR)
    proposal = decisions.decision_propose(task_id=make_case().pk, user=proposer, outcome="child_safety",
                                       reason="possible_minor")
    demo = DemoContentItem(number=501, title="A demo picture", mime="image/jpeg")
    demo.file.save("demo-501.jpg", ContentFile(make_image_bytes(2)), save=True)
    partner = partner_create(name="partner", organisation="Partner Platform Ltd")
    shared = Bank.objects.create(name="shared-with-partners")
    partner_policy_set(partner=partner, allowed_banks=[shared])
    keys = {PLATFORM_KEY: api_key_create(kind="platform", name="host")[1],
            PARTNER_KEY: partner_key_create(partner=partner, read_banks=[shared], write=True, feedback=True)[1],
            FLAGGER_KEY: api_key_create(kind="flagger", name="Trusted Flagger NGO", source="trusted_flagger")[1]}
    revoked_row, keys[REVOKED_KEY] = api_key_create(kind="platform", name="old host")
    ApiKey.objects.filter(pk=revoked_row.pk).update(revoked_at=timezone.now())
    users = {role: user_with_role(f"who-{role}", role) for role in (TRIAGE, MODERATOR, SENIOR, ADMIN)}
    return World(values={"task": task.pk, "media": media.pk, "proposal": proposal.pk, "case": case_number,
                         "demo": 501, "item": task.report.items.get().pk,
                         "bank": shared.pk, "admin_key": revoked_row.pk,
                         "bystander": user_with_role("bystander", None).pk, "partner": partner.pk,
                         "partner_key": ApiKey.objects.get(kind="partner").pk,
                         "rule": RoutingRule.objects.create(name="matrix", queue=Queue.objects.first()).pk,
                         "queue": Queue.objects.first().pk,  # type: ignore[union-attr]
                         "mute": ReporterMute.objects.create(email_hash="0" * 64, reason="matrix",
                                                             muted_by=proposer).pk},
                 pin=pin, case_number=case_number, keys=keys, users=users)


def client_as(persona: str, world: World, *, enforce_csrf: bool = False) -> Client:
    """A browser / API client acting as ``persona``, signed in the way that persona really signs in."""
    headers: dict[str, str] = {}
    if persona in world.keys:
        headers["Authorization"] = f"Api-Key {world.keys[persona]}"
    elif persona == REPORTER:
        headers["X-Case-Pin"] = world.pin
    elif persona == WRONG_PIN:
        headers["X-Case-Pin"] = "WRONG-PIN0-0000"
    client = Client(headers=headers, enforce_csrf_checks=enforce_csrf)
    if persona in world.users:
        client.force_login(world.users[persona])
    elif persona in (REPORTER, WRONG_PIN):
        client.get("/status/")  # the form sets the CSRF cookie, as in a browser
        opened = client.post("/status/", {"case_number": world.case_number, "pin": headers["X-Case-Pin"],
                                          "csrfmiddlewaretoken": client.cookies["csrftoken"].value})
        assert opened.status_code == (200 if persona == REPORTER else 404)
    cache.clear()  # the lookup just made counts toward the PIN lockout; each request here starts clean
    return client


def outcome(response: Any) -> str:
    """'allowed', 'denied' or 'missing' (404)."""
    if response.status_code in (401, 403):
        return "denied"
    if response.status_code == 404:
        return "missing"
    if response.status_code in (301, 302):
        location = response["Location"]
        if "/accounts/login/" in location or "/admin/login/" in location or location.rstrip("/").endswith("/status"):
            return "denied"
    return "allowed"


def _path(row: Row, persona: str, world: World) -> str:
    if row.path == "{media_link}":
        user = world.users.get(persona)
        if user is None:  # no account: the bare URL, as someone who guessed it would send
            return f"/console/media/{world.values['media']}"
        return media_signed_url(media_id=world.values["media"], user_id=user.pk)
    return row.path.format(**world.values)


@pytest.mark.parametrize("route", sorted(ROWS), ids=lambda r: r or "home")
def test_each_url_lets_in_exactly_the_callers_in_its_row(route: str, world: World) -> None:
    wrong: list[str] = []
    for row in ROWS[route]:
        for persona in PERSONAS:
            client = client_as(persona, world)
            kwargs: dict[str, Any] = {"content_type": "application/json"} if row.json else {}
            data = row.data() if callable(row.data) else row.data
            response = getattr(client, row.method)(_path(row, persona, world), data, **kwargs)
            got = outcome(response)
            if row.missing_object:
                expected = ("missing",) if persona in row.allowed else ("denied",)
            else:
                expected = ("allowed",) if persona in row.allowed else ("denied", "missing")
            if got not in expected:
                wrong.append(f"{row.method.upper()} {route} as {persona}: {response.status_code} "
                             f"{response.get('Location', '')} (expected {expected})")
            assert response.status_code < 500, f"{row.method.upper()} {route} as {persona}: {response.status_code}"
    assert not wrong, "\n".join(wrong)


def test_only_the_reporter_with_the_pin_sees_the_case_on_the_status_page(world: World) -> None:
    for persona in PERSONAS:
        page = client_as(persona, world).get("/status/").content.decode()
        assert (world.case_number in page) == (persona == REPORTER), persona


# --- Managing banks, partners, API keys and users: the admin pages and the commands ------------------------
# Each needs the admin role's permission (moderation.manage_banks / manage_partners / manage_users), checked
# for every role. The console roles here are staff accounts that also hold every Django model permission on
# these models, so that the role, not is_staff or a per-model grant, is what lets them in.
MANAGERS = [ANON, TRIAGE, MODERATOR, SENIOR, ADMIN]  # the admin last: its commands change what others try
MANAGED_MODELS = [BankEntry, PartnerPolicy, Remote, HashFeedback, KeyScope, User, Group, TokenProxy]

# (what is managed, method, admin URL, form data for a POST)
ADMIN_PAGES = [
    ("banks", "get", "/admin/hashing/bankentry/", None),
    ("banks", "get", "/admin/hashing/bankentry/{entry}/change/", None),
    ("partners", "get", "/admin/exchange/partnerpolicy/", None),
    ("partners", "get", "/admin/exchange/partnerpolicy/{policy}/change/", None),
    ("partners", "get", "/admin/exchange/remote/", None),
    ("partners", "get", "/admin/exchange/hashfeedback/", None),
    ("api keys", "get", "/admin/exchange/keyscope/", None),
    ("api keys", "get", "/admin/exchange/keyscope/{scope}/change/", None),
    ("users", "get", "/admin/auth/user/", None),
    ("users", "get", "/admin/auth/user/{user}/change/", None),
    ("users", "get", "/admin/auth/user/{user}/password/", None),
    ("users", "get", "/admin/auth/group/", None),
    ("users", "post", "/admin/auth/group/add/", {"name": "made-in-the-admin"}),
    ("users", "get", "/admin/authtoken/tokenproxy/", None),
]


def staff_managers(world: World) -> dict[str, User | None]:
    """The console roles' users as staff accounts with every Django permission on the managed models."""
    content_types = ContentType.objects.get_for_models(*MANAGED_MODELS, for_concrete_models=False).values()
    perms = list(Permission.objects.filter(content_type__in=content_types))
    users: dict[str, User | None] = {ANON: None}
    for role in MANAGERS[1:]:
        user = world.users[role]
        User.objects.filter(pk=user.pk).update(is_staff=True)
        user.user_permissions.add(*perms)
        users[role] = User.objects.get(pk=user.pk)  # a fresh instance: no cached permissions
    return users


@pytest.mark.parametrize(("what", "method", "path", "data"), ADMIN_PAGES,
                         ids=[f"{page[0]}:{page[1]} {page[2]}" for page in ADMIN_PAGES])
def test_only_the_admin_role_manages_banks_partners_keys_and_users_in_the_django_admin(
        what: str, method: str, path: str, data: dict[str, str] | None, world: World) -> None:
    shared = Bank.objects.get(name="shared-with-partners")
    entry = bank_add_entries(bank=shared, hashes=[("md5", "a" * 32)], source="test")[0]
    values = {"entry": entry.pk, "policy": PartnerPolicy.objects.get().pk, "scope": KeyScope.objects.first().pk,
              "user": world.users[TRIAGE].pk}
    wrong = []
    for persona, user in staff_managers(world).items():
        client = Client()
        if user is not None:
            client.force_login(user)
        body = {**data, "name": f"{data['name']}-{persona}"} if data else {}
        response = getattr(client, method)(path.format(**values), body)
        got = outcome(response)
        if got != ("allowed" if persona == ADMIN else "denied"):
            wrong.append(f"{method.upper()} {path} ({what}) as {persona}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
    if data:  # the one write: only the admin's took effect
        assert set(Group.objects.filter(name__startswith=data["name"]).values_list("name", flat=True)) == {
            f"{data['name']}-{ADMIN}"}


def _key_prefix(key: str) -> str:
    return key.split("_")[1]


def _managed_state() -> tuple[Any, ...]:
    """Everything the commands below may change."""
    return (BankEntry.objects.count(), sorted(Bank.objects.values_list("name", "enabled")),
            sorted(Partner.objects.values_list("name", "trust_level")),
            sorted(PartnerPolicy.objects.values_list("partner__name", "auto_action")),
            sorted(ApiKey.objects.values_list("prefix", "revoked_at")), Remote.objects.count(),
            AuditEvent.objects.count())


# (what is managed, the command's arguments; {file}, {key_file}, {public}, {platform} and {partner} are filled in)
COMMANDS = [
    ("banks", ["bank", "import", "shared-with-partners", "{file}"]),
    ("banks", ["bank", "configure", "shared-with-partners", "--disable"]),
    ("partners", ["partner", "add", "newcomer", "--organisation", "Newcomer Ltd"]),
    ("partners", ["partner", "policy", "partner", "--auto-action", "block_on_match"]),
    ("partners", ["partner", "remote", "partner", "--url", "http://127.0.0.1:9", "--bank", "from-partner",
                  "--public-key", "{public}", "--api-key-file", "{key_file}"]),
    ("api keys", ["partner", "key", "partner", "--read", "shared-with-partners"]),
    ("api keys", ["partner", "rotate", "{partner}"]),
    ("api keys", ["create_api_key", "--kind", "platform", "--name", "another host"]),
    ("api keys", ["revoke_api_key", "{platform}"]),
]


@pytest.mark.parametrize(("what", "args"), COMMANDS, ids=[" ".join(c[1][:2]) for c in COMMANDS])
def test_only_the_admin_role_runs_the_commands_that_change_banks_partners_and_keys(
        what: str, args: list[str], world: World, tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text(json.dumps({"algorithm": "md5", "value": "b" * 32}) + "\n")
    (tmp_path / "remote-key").write_text("td_abcd1234_the-key-they-issued-us\n")
    values = {"file": str(tmp_path / "rows.jsonl"), "key_file": str(tmp_path / "remote-key"),
              "public": public_key_b64(Ed25519PrivateKey.generate().public_key()),
              "platform": _key_prefix(world.keys[PLATFORM_KEY]), "partner": _key_prefix(world.keys[PARTNER_KEY])}
    command = [arg.format(**values) for arg in args]
    for persona in MANAGERS:
        before, last_event = _managed_state(), AuditEvent.objects.order_by("id").values_list("id", flat=True).last()
        user_args = [] if persona == ANON else ["--user", world.users[persona].username]
        if persona != ADMIN:
            with pytest.raises(CommandError, match="--user" if persona == ANON else "may not"):
                call_command(*command, *user_args, stdout=io.StringIO(), stderr=io.StringIO())
            assert _managed_state() == before, f"{' '.join(command)} as {persona} changed something"
            continue
        call_command(*command, *user_args, stdout=io.StringIO(), stderr=io.StringIO())
        assert _managed_state() != before
        events = AuditEvent.objects.filter(id__gt=last_event or 0)
        assert {(e.actor, e.role) for e in events} <= {(f"user:{world.users[ADMIN].pk}", ADMIN)}
        assert events.exists() or args[0] == "bank"  # hash banks write no audit events of their own


def test_a_command_refuses_an_inactive_or_unknown_user_and_the_bank_permission_is_moderations(
        world: World) -> None:
    admin = world.users[ADMIN]
    User.objects.filter(pk=admin.pk).update(is_active=False)
    with pytest.raises(CommandError, match="not active"):
        call_command("create_api_key", "--user", admin.username, "--kind", "platform", "--name", "x")
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("bank", "configure", "shared-with-partners", "--disable", "--user", "nobody")
    assert BANK_COMMAND_PERMISSION == PERM_MANAGE_BANKS  # hashing names it by its string
