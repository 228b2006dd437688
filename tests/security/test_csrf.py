"""Every form on every page is protected against cross-site request forgery: posting it without the CSRF
token, as a signed-in caller allowed to use it, is refused with 403 and changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from moderation.models import Report, ReviewTask
from tests.security.pages import html_pages, markup
from tests.security.test_access_matrix import ROWS, World, client_as, world  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def test_every_post_form_carries_a_csrf_token(world: World) -> None:  # noqa: F811
    missing = [f"{page.path}: form posting to {action}" for page in html_pages(world)
               for action in markup(page).forms_without_token]
    assert not missing, "\n".join(missing)


def test_every_form_posted_without_its_token_is_refused(world: World) -> None:  # noqa: F811
    forms: dict[str, str] = {}  # action -> persona who saw the form
    for page in html_pages(world, extra=[("/admin/login/", "anonymous"), ("/status/", "anonymous")]):
        for action in markup(page).post_forms:
            forms.setdefault(action, page.persona)
    # Forms seen on the pages, and every browser POST of the access matrix (some forms only appear in
    # states the pages above are not in, such as a claimed case).
    for route, rows in ROWS.items():
        for row in rows:
            # The API and the HMA-compatible routes take keys, never a session cookie: CSRF cannot apply.
            if row.method == "post" and not route.startswith(("api/", "hma/")):
                forms.setdefault(row.path.format(**world.values), "admin" if route.startswith("console/") else
                                 "reporter")
    assert {"/report/", "/status/", "/accounts/login/", "/admin/login/", "/accounts/logout/"} <= set(forms)
    state_before = list(ReviewTask.objects.values_list("pk", "state", "assignee_id"))
    accepted = []
    for action, persona in sorted(forms.items()):
        client = client_as(persona, world, enforce_csrf=True)
        response = client.post(action, {"decision": "no_violation", "reason": "not_intimate", "confirm": "on",
                                        "note": "forged", "username": "x", "password": "y"})
        if response.status_code != 403:
            accepted.append(f"{action} as {persona}: {response.status_code}")
    assert not accepted, "\n".join(accepted)
    assert list(ReviewTask.objects.values_list("pk", "state", "assignee_id")) == state_before
    assert Report.objects.filter(status=Report.Status.WITHDRAWN).count() == 0


def test_the_api_refuses_a_session_request_without_the_token(world: World) -> None:  # noqa: F811
    client = client_as("admin", world, enforce_csrf=True)
    response = client.post(f"/api/v1/queue/{world.values['task']}/claim", content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_a_form_with_its_token_is_accepted(world: World) -> None:  # noqa: F811
    client: Client = client_as("admin", world, enforce_csrf=True)
    client.get(f"/console/case/{world.values['task']}")
    response = client.post(f"/console/case/{world.values['task']}/claim",
                           {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert response.status_code == 302
    assert ReviewTask.objects.get(pk=world.values["task"]).state == ReviewTask.State.CLAIMED
