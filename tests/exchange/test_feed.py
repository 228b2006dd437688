"""GET /api/v1/exchange/hashes: a signed, stable feed of every change to the banks a key may read."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from exchange.entries import case_ref_for
from exchange.feed import Cursor
from exchange.partners import partner_key_create
from exchange.signing import instance_public_key_b64, verify
from hashing.banks import bank_add_entries, bank_get_or_create, bank_withdraw_entries
from hashing.models import BankChange, BankEntry
from moderation.models import Report
from moderation.services.intake import report_withdraw
from tests.conftest import notice_payload
from tests.exchange.conftest import PartnerSetup

PDQ_A = "a" * 64
PDQ_B = "b" * 64
PDQ_C = "c" * 64
MD5 = "0123456789abcdef0123456789abcdef"


def pull(setup: PartnerSetup, cursor: str = "", limit: int = 100) -> dict[str, Any]:
    response = setup.client().get("/api/v1/exchange/hashes", {"cursor": cursor, "limit": limit})
    assert response.status_code == 200, response.content
    assert verify(response.content, response["X-Takedown-Signature"], [instance_public_key_b64()])
    return json.loads(response.content)


def pull_all(setup: PartnerSetup, cursor: str = "", limit: int = 100) -> tuple[list[dict[str, Any]], str]:
    records: list[dict[str, Any]] = []
    while True:
        page = pull(setup, cursor, limit)
        records += page["records"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return records, cursor


@pytest.mark.django_db
def test_a_partner_pulls_new_withdrawn_and_deleted_entries_as_a_signed_page(partner: PartnerSetup) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", PDQ_A), ("pdq", PDQ_B), ("md5", MD5)],
                     source="case:TD-AAAA-BBBB")
    bank_withdraw_entries(bank=partner.confirmed, hashes=[("pdq", PDQ_B)])
    bank_withdraw_entries(bank=partner.confirmed, hashes=[("md5", MD5)], status=BankEntry.Status.DELETED)
    records, _ = pull_all(partner)
    latest = {(r["signal_type"], r["value"]): r for r in records}
    assert {k: r["status"] for k, r in latest.items()} == {
        ("pdq", PDQ_A): "active", ("pdq", PDQ_B): "withdrawn", ("md5", MD5): "deleted"}
    record = latest[("pdq", PDQ_A)]
    assert set(record) == {"signal_type", "value", "status", "created_at", "updated_at", "case_ref", "tags", "bank"}
    assert record["case_ref"] == case_ref_for("case:TD-AAAA-BBBB") and len(record["case_ref"]) == 32
    assert "TD-AAAA-BBBB" not in json.dumps(records)


@pytest.mark.django_db
def test_a_page_whose_bytes_changed_no_longer_verifies(partner: PartnerSetup) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", PDQ_A)], source="case:TD-AAAA-BBBB")
    response = partner.client().get("/api/v1/exchange/hashes")
    tampered = response.content.replace(b'"active"', b'"withdrawn"')
    assert verify(response.content, response["X-Takedown-Signature"], [instance_public_key_b64()])
    assert not verify(tampered, response["X-Takedown-Signature"], [instance_public_key_b64()])


@pytest.mark.django_db
def test_the_feed_shows_only_banks_the_key_may_read(partner: PartnerSetup) -> None:
    private = bank_get_or_create(name="internal-only")
    bank_add_entries(bank=private, hashes=[("pdq", PDQ_C)], source="case:TD-CCCC-CCCC")
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", PDQ_A)], source="case:TD-AAAA-BBBB")
    records, _ = pull_all(partner)
    assert [r["value"] for r in records] == [PDQ_A]
    # A key scoped to no readable bank may not pull at all.
    _row, write_only = partner_key_create(partner=partner.partner, write=True)
    response = APIClient().get("/api/v1/exchange/hashes", HTTP_AUTHORIZATION=f"Api-Key {write_only}")
    assert response.status_code == 403


@pytest.mark.django_db
def test_following_next_cursor_delivers_every_change_and_then_only_new_ones(partner: PartnerSetup) -> None:
    values = [f"{i:064x}" for i in range(1, 26)]
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", v) for v in values], source="case:TD-AAAA-BBBB")
    records, cursor = pull_all(partner, limit=7)
    assert sorted(r["value"] for r in records) == values
    assert pull(partner, cursor)["records"] == []
    bank_withdraw_entries(bank=partner.confirmed, hashes=[("pdq", values[3])])
    page = pull(partner, cursor)
    assert [(r["value"], r["status"]) for r in page["records"]] == [(values[3], "withdrawn")]


@pytest.mark.django_db
def test_a_change_that_commits_below_the_cursor_is_still_delivered(partner: PartnerSetup) -> None:
    bank_add_entries(bank=partner.confirmed, hashes=[("pdq", PDQ_A), ("pdq", PDQ_B), ("pdq", PDQ_C)],
                     source="case:TD-AAAA-BBBB")
    changes = list(BankChange.objects.order_by("id"))
    # The middle change's transaction has not committed yet when the partner reads.
    late_id, late_entry = changes[1].pk, changes[1].entry_id
    changes[1].delete()
    first = pull(partner)
    assert sorted(r["value"] for r in first["records"]) == sorted([PDQ_A, PDQ_C])
    assert any(low <= late_id <= high for low, high, _ in Cursor.decode(first["next_cursor"]).gaps)  # remembered
    BankChange.objects.create(id=late_id, entry_id=late_entry)  # now it commits
    second = pull(partner, first["next_cursor"])
    assert [r["value"] for r in second["records"]] == [PDQ_B]
    assert not any(low <= late_id <= high for low, high, _ in Cursor.decode(second["next_cursor"]).gaps)


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "field"), [({"cursor": "not-a-cursor"}, "cursor"), ({"limit": "0"}, "limit"),
                                              ({"limit": "abc"}, "limit"), ({"limit": "100001"}, "limit")])
def test_a_bad_cursor_or_limit_is_a_400_naming_the_field(partner: PartnerSetup, query: dict[str, str],
                                                         field: str) -> None:
    response = partner.client().get("/api/v1/exchange/hashes", query)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


@pytest.mark.django_db
def test_without_a_signing_key_the_feed_answers_503_saying_what_the_operator_must_do(
        partner: PartnerSetup, tmp_path: Any, settings: Any) -> None:
    settings.TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE = str(tmp_path / "missing.pem")
    response = partner.client().get("/api/v1/exchange/hashes")
    assert response.status_code == 503
    assert response["Retry-After"] == "300"
    assert "signing key" in response.json()["detail"]


@pytest.mark.django_db
def test_the_feed_refuses_a_missing_or_platform_key(partner: PartnerSetup, platform_key: str) -> None:
    assert APIClient().get("/api/v1/exchange/hashes").status_code in (401, 403)
    response = APIClient().get("/api/v1/exchange/hashes", HTTP_AUTHORIZATION=f"Api-Key {platform_key}")
    assert response.status_code in (401, 403)


@pytest.mark.django_db(transaction=True)
def test_a_withdrawal_on_the_victims_status_page_reaches_the_partner_feed(
        demo: Any, partner: PartnerSetup, moderator: User, client_for: Callable[[User], APIClient],
        api: APIClient) -> None:
    created = api.post("/api/v1/reports", notice_payload(locations=["demo://content/7"]), format="json").json()
    report = Report.objects.get(case_number=created["case_number"])
    task = report.tasks.get()
    client = client_for(moderator)
    assert client.post(f"/api/v1/queue/{task.pk}/claim").status_code == 200
    assert client.post(f"/api/v1/queue/{task.pk}/decide", {"decision": "takedown", "reason": "synthetic_ncii"},
                       format="json").status_code == 200
    shared, cursor = pull_all(partner)
    assert {r["signal_type"] for r in shared} == {"pdq", "md5", "sha256"}
    assert {r["status"] for r in shared} == {"active"}
    assert len({r["case_ref"] for r in shared}) == 1 and report.case_number not in json.dumps(shared)
    report_withdraw(report=report)
    after, _ = pull_all(partner, cursor)
    assert {(r["signal_type"], r["value"]) for r in after} == {(r["signal_type"], r["value"]) for r in shared}
    assert {r["status"] for r in after} == {"withdrawn"}


@pytest.mark.django_db
def test_a_disabled_partner_cannot_pull(partner: PartnerSetup) -> None:
    partner.partner.enabled = False
    partner.partner.save()
    assert partner.client().get("/api/v1/exchange/hashes").status_code == 403
