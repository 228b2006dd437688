"""The sync client against this same instance's API (one database): pages verified, applied and
checkpointed together, so an interrupted sync resumes exactly. The two-process test is test_two_instances."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from exchange import sync
from exchange.entries import feedback_record
from exchange.models import HashFeedback, Remote
from exchange.partners import partner_create, partner_policy_set
from exchange.signing import instance_public_key_b64
from exchange.sync import HttpAnswer, PageRejected, SyncError, sync_remote
from hashing.banks import bank_add_entries, bank_get_or_create, bank_withdraw_entries
from hashing.models import Bank, BankChange, BankEntry
from moderation.models import AuditEvent
from tests.exchange.conftest import PartnerSetup

VALUES = [f"{i:064x}" for i in range(1, 11)]


def loopback(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> HttpAnswer:
    """The remote is this instance, reached through Django's test client."""
    path = url.removeprefix("http://testserver")
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"}
    client = Client()
    if method == "GET":
        response = client.get(path, **meta)
    else:
        response = client.post(path, body, content_type="application/json", **meta)
    return HttpAnswer(response.status_code, response.content, {k.lower(): v for k, v in response.items()})


@pytest.fixture
def remote(partner: PartnerSetup) -> Iterator[Remote]:
    """We pull our own confirmed bank as partner "northwind" would, into the local bank "from-upstream"."""
    partner_policy_set(partner=partner.partner, public_keys=[instance_public_key_b64()])  # our feedback is signed
    upstream = partner_create(name="upstream", organisation="Upstream Platform", auto_action="block_on_match")
    bank = bank_get_or_create(name="from-upstream", kind=Bank.Kind.PARTNER)
    yield Remote.objects.create(partner=upstream, base_url="http://testserver", bank=bank,
                                public_key=instance_public_key_b64(), api_key=partner.key, page_size=3)


def local_state(remote: Remote) -> dict[str, str]:
    return dict(BankEntry.objects.filter(bank=remote.bank).values_list("value", "status"))


@pytest.mark.django_db
def test_one_sync_copies_the_remote_banks_and_writes_changes_for_matchers(partner: PartnerSetup,
                                                                         remote: Remote) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", v) for v in VALUES], source="case:TD-AAAA-BBBB")
    result = sync_remote(remote, transport=loopback)
    assert (result.complete, result.records) == (True, 10)
    assert local_state(remote) == dict.fromkeys(VALUES, "active")
    local_ids = set(BankEntry.objects.filter(bank=remote.bank).values_list("id", flat=True))
    assert local_ids <= set(BankChange.objects.values_list("entry_id", flat=True))
    assert set(BankEntry.objects.filter(bank=remote.bank).values_list("source", flat=True)) == {"partner:upstream"}
    remote.refresh_from_db()
    assert remote.bank.blocks_uploads and remote.last_synced_at is not None and remote.last_error == ""


@pytest.mark.django_db
def test_a_withdrawal_upstream_reaches_the_local_bank_on_the_next_sync(partner: PartnerSetup, remote: Remote) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", v) for v in VALUES], source="case:TD-AAAA-BBBB")
    sync_remote(remote, transport=loopback)
    bank_withdraw_entries(bank=partner.confirmed, hashes=[("pdq", VALUES[0])])
    bank_withdraw_entries(bank=partner.confirmed, hashes=[("pdq", VALUES[1])], status=BankEntry.Status.DELETED)
    second = sync_remote(remote, transport=loopback)
    assert second.records == 2
    state = local_state(remote)
    assert (state[VALUES[0]], state[VALUES[1]], state[VALUES[2]]) == ("withdrawn", "deleted", "active")


@pytest.mark.django_db
def test_a_tampered_page_is_refused_nothing_is_applied_and_it_is_audited(partner: PartnerSetup,
                                                                        remote: Remote) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", v) for v in VALUES], source="case:TD-AAAA-BBBB")

    def tampering(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> HttpAnswer:
        answer = loopback(method, url, body, headers)
        return HttpAnswer(answer.status, answer.body.replace(b'"active"', b'"deleted"'), answer.headers)

    with pytest.raises(PageRejected):
        sync_remote(remote, transport=tampering)
    assert local_state(remote) == {}
    remote.refresh_from_db()
    assert remote.cursor == "" and "signature" in remote.last_error
    assert AuditEvent.objects.filter(action="exchange.signature_rejected", data__what="page").exists()


@pytest.mark.django_db
def test_a_page_signed_by_another_key_is_refused(partner: PartnerSetup, remote: Remote) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from exchange.signing import public_key_b64

    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", VALUES[0])], source="case:TD-AAAA-BBBB")
    remote.public_key = public_key_b64(Ed25519PrivateKey.generate().public_key())
    remote.save()
    with pytest.raises(PageRejected):
        sync_remote(remote, transport=loopback)
    assert local_state(remote) == {}


@pytest.mark.django_db
def test_an_interrupted_sync_resumes_with_no_duplicates_and_no_gaps(partner: PartnerSetup, remote: Remote,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", v) for v in VALUES], source="case:TD-AAAA-BBBB")
    assert sync_remote(remote, transport=loopback, max_pages=2).records == 6  # stopped after two pages
    real_apply = sync.hash_rows_apply
    calls = {"n": 0}

    def crash_after_applying(**kwargs: Any) -> Any:
        real_apply(**kwargs)
        calls["n"] += 1
        raise SyncError("the process died here")  # after the rows were written, before the commit

    monkeypatch.setattr(sync, "hash_rows_apply", crash_after_applying)
    with pytest.raises(SyncError):
        sync_remote(remote, transport=loopback)
    assert calls["n"] == 1
    assert len(local_state(remote)) == 6  # the crashed page left nothing behind
    monkeypatch.setattr(sync, "hash_rows_apply", real_apply)
    rest = sync_remote(remote, transport=loopback)
    assert rest.complete and rest.records == 4
    assert local_state(remote) == dict.fromkeys(VALUES, "active")
    local_ids = list(BankEntry.objects.filter(bank=remote.bank).values_list("id", flat=True))
    # Each entry was added exactly once: one change row each, none from the rolled-back page.
    assert BankChange.objects.filter(entry_id__in=local_ids).count() == len(VALUES)
    remote.refresh_from_db()
    assert remote.records_applied == 10


@pytest.mark.django_db
def test_our_feedback_on_the_remotes_hashes_is_pushed_to_it(partner: PartnerSetup, remote: Remote) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", v) for v in VALUES[:2]], source="case:TD-AAAA-BBBB")
    sync_remote(remote, transport=loopback)
    local = BankEntry.objects.get(bank=remote.bank, value=VALUES[0])
    feedback_record(entry=local, partner=None, verdict="blocked", tags=["ncii"])
    result = sync_remote(remote, transport=loopback)
    assert result.feedback_pushed == 1
    upstream_entry = BankEntry.objects.get(bank=partner.confirmed, value=VALUES[0])
    received = HashFeedback.objects.get(entry=upstream_entry)
    assert (received.partner, received.verdict, received.tags) == (partner.partner, "blocked", ["ncii"])


@pytest.mark.django_db
def test_a_remote_that_refuses_the_key_leaves_a_readable_error(partner: PartnerSetup, remote: Remote) -> None:
    remote.api_key = "td_00000000_not-a-key"
    remote.save()
    with pytest.raises(SyncError) as raised:
        sync_remote(remote, transport=loopback)
    assert "401" in str(raised.value) or "403" in str(raised.value)
    assert "not-a-key" not in str(raised.value)


@pytest.mark.django_db
def test_a_hash_withdrawn_before_the_first_sync_arrives_as_a_tombstone_that_never_matches(
        partner: PartnerSetup, remote: Remote) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", v) for v in VALUES[:2]], source="case:TD-AAAA-BBBB")
    bank_withdraw_entries(bank=partner.confirmed, hashes=[("pdq", VALUES[0])])
    sync_remote(remote, transport=loopback)
    assert local_state(remote) == {VALUES[0]: "withdrawn", VALUES[1]: "active"}
    tombstone = BankEntry.objects.get(bank=remote.bank, value=VALUES[0])
    assert BankChange.objects.filter(entry_id=tombstone.pk).count() == 1
