"""The case page's one decision form: one reason select grouped by decision, and "decide and next", which decides
and claims the next case in the same request."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from moderation.models import Decision, ReviewTask
from moderation.roles import MODERATOR
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def mod_client(client: Client) -> tuple[Client, User]:
    user = user_with_role("mo", MODERATOR)
    client.force_login(user)
    return client, user


def test_the_case_page_has_one_reason_select_grouped_by_decision(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    case = make_case()
    html = client.get(f"/console/case/{case.pk}").content.decode()
    assert html.count('name="reason" class="reason-select"') == 1
    groups = re.findall(r'<optgroup label="([^"]+)" data-outcome="([^"]*)">(.*?)</optgroup>', html, re.S)
    assert [(label, outcome) for label, outcome, _ in groups] == [
        ("Take down", "takedown"), ("No violation", "no_violation"), ("Either decision", "")]
    assert 'value="synthetic_ncii"' in groups[0][2] and 'value="not_intimate"' in groups[1][2]
    assert 'value="other"' in groups[2][2] and 'value="other"' not in groups[0][2] + groups[1][2]
    assert f'formaction="/console/case/{case.pk}/decide?then=next"' in html
    assert '<details id="more">' in html and 'id="hold-form"' in html


def test_decide_and_next_decides_then_claims_and_opens_the_next_case(mod_client: tuple[Client, User]) -> None:
    client, user = mod_client
    case = make_case(priority=50)
    following = make_case(priority=10)
    client.post(f"/console/case/{case.pk}/claim")
    response = client.post(f"/console/case/{case.pk}/decide?then=next",
                           {"decision": "takedown", "reason": "synthetic_ncii"})
    assert response.status_code == 302 and response["Location"] == f"/console/case/{following.pk}"
    assert Decision.objects.get(task=case).outcome == Decision.Outcome.TAKEDOWN
    following.refresh_from_db()
    assert following.state == ReviewTask.State.CLAIMED and following.assignee == user


def test_decide_and_next_goes_back_to_the_queue_when_no_case_is_left(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    case = make_case()
    client.post(f"/console/case/{case.pk}/claim")
    response = client.post(f"/console/case/{case.pk}/decide?then=next",
                           {"decision": "no_violation", "reason": "not_intimate"}, follow=True)
    assert response.redirect_chain[-1][0] == "/console/"
    html = response.content.decode()
    assert "Decided: No violation." in html and "There is no unclaimed case in the queue." in html


def test_a_refused_decision_claims_nothing_and_says_why(mod_client: tuple[Client, User]) -> None:
    client, _ = mod_client
    case = make_case(priority=50)
    following = make_case(priority=10)
    client.post(f"/console/case/{case.pk}/claim")
    response = client.post(f"/console/case/{case.pk}/decide?then=next",
                           {"decision": "no_violation", "reason": "synthetic_ncii"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/console/case/{case.pk}"
    assert "does not fit a no_violation decision" in response.content.decode()
    assert not Decision.objects.exists()
    assert ReviewTask.objects.get(pk=following.pk).state == ReviewTask.State.OPEN
