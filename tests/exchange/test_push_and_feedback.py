"""POST /api/v1/exchange/hashes and /feedback: signed batches from partners, all-or-nothing, audited."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rest_framework.test import APIClient

from exchange.entries import feedback_record
from exchange.models import HashFeedback, SharedEntry
from exchange.partners import partner_key_create, partner_policy_set
from exchange.validation import ExchangeError
from hashing.banks import bank_add_entries
from hashing.models import BankChange, BankEntry
from moderation.models import AuditEvent
from tests.conftest import make_image_bytes
from tests.exchange.conftest import PartnerSetup

PDQ_A = "a" * 64
PDQ_B = "b" * 64
MD5 = "0123456789abcdef0123456789abcdef"


def partner_entries(setup: PartnerSetup) -> dict[tuple[str, str], str]:
    return {(e.algorithm, e.value): e.status for e in BankEntry.objects.filter(bank__name="partner-northwind")}


@pytest.mark.django_db
def test_a_pushed_batch_lands_in_the_partners_bank_once_with_its_source_and_tags(partner: PartnerSetup) -> None:
    batch = {"records": [{"signal_type": "pdq", "value": PDQ_A.upper(), "tags": ["ncii"], "case_ref": "nw-123"},
                         {"signal_type": "md5", "value": MD5}]}
    first = partner.post_signed("/api/v1/exchange/hashes", batch)
    assert first.status_code == 200, first.content
    assert first.json() == {"added": 2, "withdrawn": 0, "unchanged": 0}
    changes = BankChange.objects.count()
    again = partner.post_signed("/api/v1/exchange/hashes", batch)
    assert again.json() == {"added": 0, "withdrawn": 0, "unchanged": 2}
    assert BankChange.objects.count() == changes  # nothing changed, so matchers have nothing to replay
    assert partner_entries(partner) == {("pdq", PDQ_A): "active", ("md5", MD5): "active"}
    entry = BankEntry.objects.get(value=PDQ_A)
    assert entry.source == "partner:northwind"
    assert (SharedEntry.objects.get(entry=entry).tags, SharedEntry.objects.get(entry=entry).case_ref) == (
        ["ncii"], "nw-123")
    assert AuditEvent.objects.filter(action="exchange.hashes_pushed").count() == 2


@pytest.mark.django_db
def test_a_partner_withdraws_a_hash_it_pushed(partner: PartnerSetup) -> None:
    partner.post_signed("/api/v1/exchange/hashes", {"records": [{"signal_type": "pdq", "value": PDQ_A}]})
    response = partner.post_signed("/api/v1/exchange/hashes",
                                   {"records": [{"signal_type": "pdq", "value": PDQ_A, "status": "withdrawn"}]})
    assert response.json()["withdrawn"] == 1
    assert partner_entries(partner) == {("pdq", PDQ_A): "withdrawn"}


@pytest.mark.django_db
def test_a_batch_with_a_bad_row_is_refused_naming_the_row_and_field_and_nothing_is_saved(
        partner: PartnerSetup) -> None:
    batch = {"records": [{"signal_type": "pdq", "value": PDQ_A},
                         {"signal_type": "pdq", "value": "xyz"},
                         {"signal_type": "nope", "value": MD5},
                         {"signal_type": "md5", "value": MD5, "status": "gone"},
                         {"signal_type": "md5", "value": MD5, "tags": "ncii"}]}
    response = partner.post_signed("/api/v1/exchange/hashes", batch)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"records[1].value", "records[2].signal_type", "records[3].status",
                                              "records[4].tags"}
    assert partner_entries(partner) == {}
    not_a_list = partner.post_signed("/api/v1/exchange/hashes", {"records": "pdq"})
    assert not_a_list.status_code == 400 and list(not_a_list.json()["errors"]) == ["records"]


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["unsigned", "wrong_key", "tampered"])
def test_an_unsigned_or_badly_signed_push_is_rejected_and_audited(partner: PartnerSetup, how: str) -> None:
    batch = {"records": [{"signal_type": "pdq", "value": PDQ_A}]}
    if how == "unsigned":
        response = partner.client().post("/api/v1/exchange/hashes", batch, format="json")
    else:
        response = partner.post_signed("/api/v1/exchange/hashes", batch, tamper=how == "tampered",
                                       key=Ed25519PrivateKey.generate() if how == "wrong_key" else None)
    assert response.status_code == 401
    assert "X-Takedown-Signature" in response.json()["detail"]
    assert partner_entries(partner) == {}
    event = AuditEvent.objects.get(action="exchange.signature_rejected")
    assert event.data["what"] == "push" and event.object_id == str(partner.partner.pk)


@pytest.mark.django_db
def test_a_key_without_write_scope_cannot_push(partner: PartnerSetup) -> None:
    _row, read_only = partner_key_create(partner=partner.partner, read_banks=[partner.confirmed])
    partner.key = read_only
    response = partner.post_signed("/api/v1/exchange/hashes", {"records": [{"signal_type": "pdq", "value": PDQ_A}]})
    assert response.status_code == 403


@pytest.mark.django_db
def test_feedback_is_recorded_once_per_partner_and_entry_and_can_change(partner: PartnerSetup) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", PDQ_A)], source="case:TD-AAAA-BBBB")
    payload = {"feedback": [{"signal_type": "pdq", "value": PDQ_A, "verdict": "blocked", "tags": ["ncii"]}]}
    assert partner.post_signed("/api/v1/exchange/feedback", payload).json() == {"recorded": 1}
    assert partner.post_signed("/api/v1/exchange/feedback", payload).status_code == 200
    row = HashFeedback.objects.get()
    assert (row.partner, row.verdict, row.tags) == (partner.partner, "blocked", ["ncii"])
    assert AuditEvent.objects.filter(action="exchange.feedback_recorded").count() == 1
    payload["feedback"][0]["verdict"] = "not_blocked"
    partner.post_signed("/api/v1/exchange/feedback", payload)
    assert HashFeedback.objects.get().verdict == "not_blocked"


@pytest.mark.django_db
def test_feedback_on_a_hash_not_shared_or_with_a_bad_verdict_is_refused_naming_the_row(
        partner: PartnerSetup) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", PDQ_A)], source="case:TD-AAAA-BBBB")
    payload = {"feedback": [{"signal_type": "pdq", "value": PDQ_A, "verdict": "blocked"},
                            {"signal_type": "pdq", "value": PDQ_B, "verdict": "blocked"},
                            {"signal_type": "pdq", "value": PDQ_A, "verdict": "maybe"}]}
    response = partner.post_signed("/api/v1/exchange/feedback", payload)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"feedback[1].value", "feedback[2].verdict"}
    assert not HashFeedback.objects.exists()


@pytest.mark.django_db
def test_feedback_record_rejects_an_unknown_verdict(partner: PartnerSetup) -> None:
    [entry] = bank_add_entries(bank=partner.confirmed, hashes=[("pdq", PDQ_A)], source="case:TD-AAAA-BBBB")
    with pytest.raises(ExchangeError) as raised:
        feedback_record(entry=entry, partner=partner.partner, verdict="Blocked!")
    assert list(raised.value.errors) == ["verdict"]


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "verdict"), [("block_on_match", "block"), ("queue_for_review", "review"),
                                                 ("ignore", "allow")])
def test_the_partners_auto_action_decides_what_a_match_on_its_hashes_does(
        partner: PartnerSetup, platform_key: str, action: str, verdict: str) -> None:
    from hashing.algorithms import hash_bytes

    image = make_image_bytes(seed=41)
    hashes = hash_bytes(image)
    partner.post_signed("/api/v1/exchange/hashes", {"records": [{"signal_type": "pdq", "value": hashes.pdq}]})
    partner_policy_set(partner=partner.partner, auto_action=action)
    response = APIClient().post("/api/v1/scan", {"file": _upload(image)}, format="multipart",
                                HTTP_AUTHORIZATION=f"Api-Key {platform_key}")
    assert response.status_code == 200, response.content
    assert response.json()["verdict"] == verdict


def _upload(data: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("upload.jpg", data, content_type="image/jpeg")
