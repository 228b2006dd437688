"""The console's API-key page: keys listed, a new key shown once, revocation; every change audited."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from exchange.partners import partner_create, partner_key_create
from moderation.models import ApiKey, AuditEvent
from moderation.services.api_keys import api_key_authenticate, api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user: User, client: Client) -> Client:
    client.force_login(admin_user)
    return client


def test_the_page_lists_keys_of_every_kind_with_their_state(admin_client: Client) -> None:
    active, _ = api_key_create(kind="platform", name="host")
    revoked, _ = api_key_create(kind="flagger", name="NGO", source="trusted_flagger")
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at="2026-01-01T00:00:00Z")
    partner = partner_create(name="peer", organisation="Peer Ltd")
    partner_key_create(partner=partner, feedback=True)
    page = admin_client.get("/console/admin/keys")
    html = page.content.decode()
    assert [k.name for k in page.context["keys"]][-1] == "NGO"  # revoked keys last
    assert f'data-prefix="{active.prefix}"' in html and "peer" in html and "revoked 2026-01-01" in html
    assert page["Cache-Control"] == "private, no-store, max-age=0"


def test_a_new_platform_key_is_shown_once_and_works(admin_client: Client, caplog: Any) -> None:
    with caplog.at_level(logging.DEBUG):
        page = admin_client.post("/console/admin/keys/create", {"kind": "platform", "name": "host", "curation": "on"})
    row, key = page.context["created"]
    assert key.startswith(f"td_{row.prefix}_") and key in page.content.decode()
    assert row.curation and api_key_authenticate(key, kind="platform") == row
    assert key not in admin_client.get("/console/admin/keys").content.decode()
    event = AuditEvent.objects.get(action="api_key.created")
    assert event.actor == f"user:{page.wsgi_request.user.pk}" and key not in str(event.data)
    assert key not in caplog.text


def test_a_flagger_key_needs_its_source(admin_client: Client) -> None:
    page = admin_client.post("/console/admin/keys/create", {"kind": "flagger", "name": "NGO"})
    assert page.status_code == 400 and "A flagger key needs a source" in page.content.decode()
    made = admin_client.post("/console/admin/keys/create", {"kind": "flagger", "name": "NGO",
                                                           "source": "trusted_flagger"})
    assert made.context["created"][0].source == "trusted_flagger"


def test_partner_keys_are_not_made_without_their_scope(admin_client: Client) -> None:
    page = admin_client.post("/console/admin/keys/create", {"kind": "partner", "name": "peer"})
    assert page.status_code == 400 and not ApiKey.objects.exists()


def test_revoking_a_key_refuses_it_at_once_and_is_audited(admin_client: Client) -> None:
    row, key = api_key_create(kind="platform", name="host")
    response = admin_client.post(f"/console/admin/keys/{row.pk}/revoke")
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None and api_key_authenticate(key, kind="platform") is None
    assert AuditEvent.objects.get(action="api_key.revoked").data["prefix"] == row.prefix


def test_revoking_a_revoked_key_says_when_it_was_revoked(admin_client: Client) -> None:
    row, _ = api_key_create(kind="platform", name="host")
    admin_client.post(f"/console/admin/keys/{row.pk}/revoke")
    again = admin_client.post(f"/console/admin/keys/{row.pk}/revoke", follow=True)
    assert "was revoked already" in again.content.decode()
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_the_key_list_costs_the_same_few_queries_for_many_keys(admin_client: Client,
                                                              django_assert_max_num_queries: Any) -> None:
    partner = partner_create(name="peer", organisation="Peer Ltd")
    for n in range(20):
        api_key_create(kind="platform", name=f"host {n}")
        partner_key_create(partner=partner, feedback=True, name=f"peer {n}")
    with django_assert_max_num_queries(7):
        page = admin_client.get("/console/admin/keys")
    assert len(page.context["keys"]) == 40
