"""The console's partner pages: partners with their policy, scoped keys shown once, rotation; all audited."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth.models import User
from django.test import Client

from exchange.models import KeyScope, PartnerPolicy
from exchange.partners import partner_create, partner_key_create, partner_policy_set
from exchange.signing import public_key_b64
from hashing.models import Bank
from moderation.models import ApiKey, AuditEvent, Partner
from moderation.services.api_keys import api_key_authenticate

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user: User, client: Client) -> Client:
    client.force_login(admin_user)
    return client


@pytest.fixture
def shared() -> Bank:
    return Bank.objects.create(name="shared-with-partners")


@pytest.fixture
def partner(shared: Bank) -> Partner:
    partner = partner_create(name="peer", organisation="Peer Ltd")
    partner_policy_set(partner=partner, allowed_banks=[shared])
    return partner


def test_an_admin_adds_a_partner_with_its_policy(admin_client: Client, admin_user: User, shared: Bank) -> None:
    public = public_key_b64(Ed25519PrivateKey.generate().public_key())
    response = admin_client.post("/console/admin/partners/add", {
        "name": "peer", "organisation": "Peer Ltd", "trust_level": "medium", "auto_action": "block_on_match",
        "allowed_banks": [shared.pk], "public_keys": f"{public}\n"})
    partner = Partner.objects.get(name="peer")
    assert response["Location"] == f"/console/admin/partners/{partner.pk}"
    policy = PartnerPolicy.objects.get(partner=partner)
    assert (partner.trust_level, policy.auto_action, policy.public_keys) == ("medium", "block_on_match", [public])
    assert list(policy.allowed_banks.all()) == [shared]
    assert AuditEvent.objects.get(action="partner.created").actor == f"user:{admin_user.pk}"


def test_a_bad_public_key_is_refused_on_its_field(admin_client: Client) -> None:
    page = admin_client.post("/console/admin/partners/add", {
        "name": "peer", "organisation": "Peer Ltd", "trust_level": "low", "auto_action": "queue_for_review",
        "public_keys": "not-a-key"})
    assert page.status_code == 400 and "public_keys:" in page.content.decode()
    assert not Partner.objects.exists()


def test_the_list_shows_each_partner_with_its_policy_and_keys(admin_client: Client, partner: Partner) -> None:
    row, _ = partner_key_create(partner=partner, feedback=True)
    html = admin_client.get("/console/admin/partners/").content.decode()
    assert 'data-partner="peer"' in html and "shared-with-partners" in html and row.prefix in html


def test_the_partner_list_costs_the_same_few_queries_for_many_partners(
        admin_client: Client, shared: Bank, django_assert_max_num_queries: Any) -> None:
    for n in range(15):
        peer = partner_create(name=f"peer-{n}", organisation="Peer Ltd", allowed_banks=[shared])
        partner_key_create(partner=peer, read_banks=[shared], feedback=True)
    with django_assert_max_num_queries(12):
        page = admin_client.get("/console/admin/partners/")
    assert len(page.context["partners"]) == 15


def test_a_scoped_key_is_shown_once_and_reads_only_its_banks(admin_client: Client, partner: Partner,
                                                             shared: Bank) -> None:
    page = admin_client.post(f"/console/admin/partners/{partner.pk}/keys", {"read_banks": [shared.pk],
                                                                           "feedback": "on"})
    row, key = page.context["created"]
    assert key in page.content.decode() and page["Cache-Control"] == "private, no-store, max-age=0"
    assert api_key_authenticate(key, kind="partner") == row
    scope = KeyScope.objects.get(api_key=row)
    assert (list(scope.read_banks.all()), scope.write_bank, scope.feedback) == ([shared], None, True)
    assert key not in admin_client.get(f"/console/admin/partners/{partner.pk}").content.decode()
    assert key not in str(AuditEvent.objects.get(action="partner.key_scoped").data)


def test_a_key_without_any_scope_is_refused(admin_client: Client, partner: Partner) -> None:
    page = admin_client.post(f"/console/admin/partners/{partner.pk}/keys", {"name": "nothing"})
    assert page.status_code == 400 and "a key must be able to read a bank" in page.content.decode()


def test_rotating_a_key_revokes_it_and_shows_the_new_one_once(admin_client: Client, partner: Partner,
                                                             shared: Bank) -> None:
    old, old_key = partner_key_create(partner=partner, read_banks=[shared])
    page = admin_client.post(f"/console/admin/partners/keys/{old.pk}/rotate")
    new, new_key = page.context["created"]
    assert api_key_authenticate(old_key, kind="partner") is None
    assert api_key_authenticate(new_key, kind="partner") == new
    assert list(KeyScope.objects.get(api_key=new).read_banks.all()) == [shared]
    assert AuditEvent.objects.get(action="api_key.rotated").data["new_prefix"] == new.prefix


def test_a_revoked_key_cannot_be_rotated(admin_client: Client, partner: Partner, shared: Bank) -> None:
    old, _ = partner_key_create(partner=partner, read_banks=[shared])
    admin_client.post(f"/console/admin/partners/keys/{old.pk}/rotate")
    again = admin_client.post(f"/console/admin/partners/keys/{old.pk}/rotate", follow=True)
    assert "only an active partner key can be rotated" in again.content.decode()
    assert ApiKey.objects.filter(partner=partner).count() == 2


def test_a_policy_change_applies_to_the_partners_banks_and_is_audited(admin_client: Client, partner: Partner,
                                                                      shared: Bank) -> None:
    partner_key_create(partner=partner, write=True)
    response = admin_client.post(f"/console/admin/partners/{partner.pk}/policy", {
        "trust_level": "high", "auto_action": "block_on_match", "allowed_banks": [shared.pk], "public_keys": ""})
    assert response.status_code == 302
    written = Bank.objects.get(name="partner-peer")
    assert written.blocks_uploads and written.enabled
    event = AuditEvent.objects.filter(action="partner.policy_changed").latest("pk")  # the fixture made one too
    assert (event.before["auto_action"], event.after["auto_action"], event.after["trust_level"]) == (
        "queue_for_review", "block_on_match", "high")
