"""Partner feedback is shown where moderators see the bank entry: the case page's matches and the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from exchange.entries import feedback_record
from exchange.partners import partner_create
from moderation.models import Match
from moderation.roles import MODERATOR
from tests.moderation.console_helpers import make_case, user_with_role

pytestmark = pytest.mark.django_db


def test_the_case_page_shows_partner_feedback_beside_each_match(client: Client) -> None:
    task = make_case(match=True)
    entry = Match.objects.get(media__reported_items__report=task.report).bank_entry
    northwind = partner_create(name="northwind", organisation="Northwind Social")
    feedback_record(entry=entry, partner=northwind, verdict="blocked", tags=["ncii", "deepfake"])
    feedback_record(entry=entry, partner=None, verdict="not_blocked")  # our own verdict is not partner feedback
    client.force_login(user_with_role("mo", MODERATOR))
    html = client.get(f"/console/case/{task.pk}").content.decode()
    assert "Partner feedback" in html
    assert "northwind: Blocked (ncii, deepfake)" in html
    assert "Not blocked" not in html


def test_the_admin_shows_a_bank_entrys_feedback_and_never_a_remotes_key(client: Client) -> None:
    task = make_case(match=True)
    entry = Match.objects.get(media__reported_items__report=task.report).bank_entry
    northwind = partner_create(name="northwind", organisation="Northwind Social")
    feedback_record(entry=entry, partner=northwind, verdict="pending_review")
    client.force_login(User.objects.create_superuser("root", "root@example.org", "pw-root-unused"))
    page = client.get(f"/admin/hashing/bankentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert "Pending review" in page.content.decode()
    assert client.get("/admin/exchange/remote/").status_code == 200
