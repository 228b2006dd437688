"""Every URL of the site against every kind of caller: anonymous, the reporter who opened their case with
its PIN, someone with a wrong PIN, the four console roles, a platform key, a partner key, a flagger key
and a revoked key.

The URL list comes from the URL resolver, so a URL added without a row here fails
``test_every_url_has_a_row_in_the_matrix`` with the missing routes named. "Allowed" means the request got
past the access check: any answer but 401/403, a 404 standing for "no such case for you", or a redirect to a
login or to the case-lookup form.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from exchange.partners import partner_create, partner_key_create, partner_policy_set
from hashing.models import Bank
from moderation.models import ApiKey, DemoContentItem, Report
from moderation.roles import ADMIN, MODERATOR, SENIOR, TRIAGE
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
    "console/case/<int:task_id>/release": [Row("post", "/console/case/{task}/release", STAFF)],
    "console/case/<int:task_id>/escalate": [Row("post", "/console/case/{task}/escalate", STAFF,
                                                {"note": "please look"})],
    "console/case/<int:task_id>/comment": [Row("post", "/console/case/{task}/comment", STAFF, {"note": "a note"})],
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
    "console/appeals/": [Row("get", "/console/appeals/", STAFF)],
    "console/appeals/<int:appeal_id>": [Row("get", "/console/appeals/999999", STAFF, missing_object=True)],
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
                         "demo": 501}, pin=pin, case_number=case_number, keys=keys, users=users)


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
