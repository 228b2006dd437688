"""HMA's banks and contents are our banks and entries: writes go through our bank services, change log and audit."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from hashing.banks import bank_add_entries, bank_get_or_create
from hashing.models import Bank, BankChange, BankEntry
from moderation.hma.lookup import HmaConfirmedMatch
from moderation.models import ApiKey, AuditEvent
from moderation.observability import events
from moderation.services.hma import hma_reenable_due
from tests.hma.conftest import Hma, pdq_of

pytestmark = pytest.mark.django_db

HOOKED: list[HmaConfirmedMatch] = []


def remember(match: HmaConfirmedMatch) -> None:
    """A TAKEDOWN_HMA_MATCH_HOOK for the test below."""
    HOOKED.append(match)


def random_pdq(seed: int) -> str:
    return f"{random.Random(seed).getrandbits(256):064x}"


def curator_key_id(curator: Hma) -> int:
    key = curator.headers["HTTP_AUTHORIZATION"].split(" ", 1)[1]
    from moderation.security.secrets import hash_api_key

    return ApiKey.objects.get(key_hash=hash_api_key(key)).pk


def test_a_bank_created_through_hma_is_one_of_our_banks_named_the_reversible_way(curator: Hma) -> None:
    assert curator.post("/c/banks", {"name": "NCII_REPORTS", "enabled_ratio": 0.25}).status_code == 201
    bank = Bank.objects.get(name="ncii-reports")
    assert (bank.enabled, bank.enabled_ratio, bank.kind) == (True, 0.25, Bank.Kind.LOCAL)
    event = AuditEvent.objects.get(action="bank.created")
    assert event.actor == f"api_key:{curator_key_id(curator)}"


def test_our_banks_show_under_hma_names_and_those_without_one_do_not(hma: Hma, curator: Hma) -> None:
    for name in ("confirmed-takedowns", "2024-list", "my_bank", "my-bank"):
        bank_get_or_create(name=name)
    names = [b["name"] for b in curator.get("/c/banks").json()]
    assert names == ["CONFIRMED_TAKEDOWNS", "MY_BANK"]
    hidden = random_pdq(99)
    bank_add_entries(bank=Bank.objects.get(name="2024-list"), hashes=[("pdq", hidden)], source="import:x")
    assert hma.get("/m/raw_lookup", {"signal": hidden, "signal_type": "pdq"}).json() == {"matches": []}
    # Of the two banks that both read MY_BANK, the one named the HMA way answers.
    curator.post("/c/bank/MY_BANK/signal", {"pdq": random_pdq(1)})
    assert BankEntry.objects.get(algorithm="pdq", source__startswith="hma:").bank.name == "my-bank"


def test_content_ids_are_entry_ids_and_adding_logs_a_change_and_an_audit_event(curator: Hma,
                                                                               photo: Callable[[int], bytes]) -> None:
    curator.post("/c/banks", {"name": "MAPPED"})
    before = BankChange.objects.count()
    added = curator.post("/c/bank/MAPPED/content", files={"photo": photo(1)}).json()
    entry = BankEntry.objects.get(pk=added["id"])
    assert (entry.bank.name, entry.algorithm, entry.value, entry.status) == (
        "mapped", "pdq", pdq_of(photo(1)), BankEntry.Status.ACTIVE)
    assert entry.source.startswith("hma:")
    assert BankChange.objects.filter(entry_id=entry.pk).count() == 1
    assert BankChange.objects.count() == before + 1
    event = AuditEvent.objects.get(action="bank.entries_added")
    assert event.data["entries"] == [entry.pk] and event.actor == f"api_key:{curator_key_id(curator)}"
    # The same hash again is the same content, not a second entry.
    again = curator.post("/c/bank/MAPPED/signal", {"pdq": pdq_of(photo(1))}).json()
    assert again["id"] == entry.pk


def test_several_signals_in_one_request_are_one_content_each(curator: Hma) -> None:
    curator.post("/c/banks", {"name": "SPLIT"})
    answer = curator.post("/c/bank/SPLIT/signal", {"pdq": random_pdq(2), "video_md5": "c" * 32}).json()
    entries = {e.algorithm: e.pk for e in BankEntry.objects.filter(bank__name="split")}
    assert answer["ids"] == {"pdq": entries["pdq"], "video_md5": entries["md5"]}
    assert answer["id"] == entries["pdq"]


def test_disabling_withdraws_the_entry_through_the_change_log_and_enabling_brings_it_back(hma: Hma,
                                                                                         curator: Hma) -> None:
    curator.post("/c/banks", {"name": "TOGGLE"})
    value = random_pdq(3)
    content_id = curator.post("/c/bank/TOGGLE/signal", {"pdq": value}).json()["id"]
    changes = BankChange.objects.filter(entry_id=content_id).count()
    curator.put(f"/c/bank/TOGGLE/content/{content_id}", {"disable_until_ts": 0})
    assert BankEntry.objects.get(pk=content_id).status == BankEntry.Status.WITHDRAWN
    assert BankChange.objects.filter(entry_id=content_id).count() == changes + 1
    assert hma.get("/m/raw_lookup", {"signal": value, "signal_type": "pdq"}).json() == {"matches": []}
    assert AuditEvent.objects.filter(action="bank.entry_updated", object_id=str(content_id)).count() == 1
    curator.put(f"/c/bank/TOGGLE/content/{content_id}", {"disable_until_ts": 1})
    assert BankEntry.objects.get(pk=content_id).status == BankEntry.Status.ACTIVE
    assert hma.get("/m/raw_lookup", {"signal": value, "signal_type": "pdq"}).json() == {"matches": [content_id]}


def test_a_content_disabled_until_a_time_matches_again_once_it_has_passed(hma: Hma, curator: Hma) -> None:
    curator.post("/c/banks", {"name": "TIMED"})
    value = random_pdq(4)
    content_id = curator.post("/c/bank/TIMED/signal", {"pdq": value}).json()["id"]
    until = int(time.time()) + 600
    assert curator.put(f"/c/bank/TIMED/content/{content_id}", {"disable_until_ts": until}).status_code == 200
    assert hma.get("/m/raw_lookup", {"signal": value, "signal_type": "pdq"}).json() == {"matches": []}
    assert curator.get(f"/c/bank/TIMED/content/{content_id}").json()["disable_until_ts"] == until
    assert hma_reenable_due() == 0
    assert hma_reenable_due(now=timezone.now() + timedelta(seconds=700)) == 1
    assert hma.get("/m/raw_lookup", {"signal": value, "signal_type": "pdq"}).json() == {"matches": [content_id]}
    # The entry's status decides what is reported: it matches, so it is enabled.
    assert curator.get(f"/c/bank/TIMED/content/{content_id}").json()["disable_until_ts"] == 1


def test_deleting_a_content_leaves_a_tombstone_that_never_matches(hma: Hma, curator: Hma) -> None:
    curator.post("/c/banks", {"name": "GONE"})
    value = random_pdq(5)
    content_id = curator.post("/c/bank/GONE/signal", {"pdq": value}).json()["id"]
    curator.delete(f"/c/bank/GONE/content/{content_id}")
    assert BankEntry.objects.get(pk=content_id).status == BankEntry.Status.DELETED
    assert curator.get(f"/c/bank/GONE/content/{content_id}").status_code == 404
    assert hma.get("/m/raw_lookup", {"signal": value, "signal_type": "pdq"}).json() == {"matches": []}


def test_deleting_a_bank_deletes_its_entries_keeps_the_rows_and_creating_it_again_brings_it_back_empty(
        hma: Hma, curator: Hma) -> None:
    curator.post("/c/banks", {"name": "TEMPORARY"})
    values = [random_pdq(10 + n) for n in range(3)]
    ids = [curator.post("/c/bank/TEMPORARY/signal", {"pdq": v}).json()["id"] for v in values]
    assert curator.delete("/c/bank/TEMPORARY").status_code == 200
    bank = Bank.objects.get(name="temporary")
    assert bank.deleted_at is not None and not bank.enabled
    assert set(BankEntry.objects.filter(pk__in=ids).values_list("status", flat=True)) == {BankEntry.Status.DELETED}
    assert all(BankChange.objects.filter(entry_id=i).count() == 2 for i in ids)
    assert curator.get("/c/bank/TEMPORARY").status_code == 404
    assert "TEMPORARY" not in [b["name"] for b in curator.get("/c/banks").json()]
    assert hma.get("/m/raw_lookup", {"signal": values[0], "signal_type": "pdq"}).json() == {"matches": []}
    assert curator.post("/c/banks", {"name": "TEMPORARY"}).status_code == 201
    assert Bank.objects.get(name="temporary").pk == bank.pk
    assert hma.get("/m/raw_lookup", {"signal": values[0], "signal_type": "pdq"}).json() == {"matches": []}


def test_partner_banks_are_read_only_and_settings_named_banks_cannot_be_deleted_or_renamed(curator: Hma,
                                                                                          settings: Any) -> None:
    partner = bank_get_or_create(name="partner-acme", kind=Bank.Kind.PARTNER)
    bank_add_entries(bank=partner, hashes=[("pdq", random_pdq(6))], source="partner:acme")
    for response in (curator.post("/c/bank/PARTNER_ACME/signal", {"pdq": random_pdq(7)}),
                     curator.put("/c/bank/PARTNER_ACME", {"enabled": False}),
                     curator.delete("/c/bank/PARTNER_ACME")):
        assert response.status_code == 403
        assert "partner" in response.json()["message"]
    assert curator.get("/c/exchanges").json() == ["PARTNER_ACME"]
    assert curator.get("/c/exchange/PARTNER_ACME").json()["enabled"] is True
    refused = curator.post("/c/exchanges", {"bank": "NEW", "api": "fb_threatexchange"})
    assert refused.status_code == 501 and "manage.py partner" in refused.json()["message"]

    bank_get_or_create(name=settings.TAKEDOWN_CONFIRMED_BANK)
    assert curator.delete("/c/bank/CONFIRMED_TAKEDOWNS").status_code == 403
    assert curator.put("/c/bank/CONFIRMED_TAKEDOWNS", {"name": "OTHER"}).status_code == 403
    assert curator.post("/c/bank/CONFIRMED_TAKEDOWNS/signal", {"pdq": random_pdq(8)}).status_code == 200


def test_disabling_a_bank_through_hma_disables_it_for_takedown_too(curator: Hma) -> None:
    curator.post("/c/banks", {"name": "SWITCH"})
    assert curator.put("/c/bank/SWITCH", {"enabled": False}).json()["matching_enabled_ratio"] == 0
    assert Bank.objects.get(name="switch").enabled is False
    assert curator.put("/c/bank/SWITCH", {"enabled_ratio": 0.5}).json()["matching_enabled_ratio"] == 0.5
    bank = Bank.objects.get(name="switch")
    assert (bank.enabled, bank.enabled_ratio) == (True, 0.5)
    assert curator.put("/c/bank/SWITCH", {"name": "SWITCHED"}).json()["name"] == "SWITCHED"
    assert Bank.objects.filter(name="switched").exists()


def test_a_lookup_that_matches_a_confirmed_bank_is_counted_and_handed_to_the_policy_hook(
        hma: Hma, curator: Hma, settings: Any) -> None:
    settings.TAKEDOWN_HMA_MATCH_HOOK = f"{__name__}.remember"
    HOOKED.clear()
    confirmed = bank_get_or_create(name=settings.TAKEDOWN_CONFIRMED_BANK)
    value = random_pdq(9)
    entry = bank_add_entries(bank=confirmed, hashes=[("pdq", value)], source="case:TD-1")[0]
    curator.post("/c/banks", {"name": "ORDINARY"})
    curator.post("/c/bank/ORDINARY/signal", {"pdq": value})
    counter = events.HMA_CONFIRMED_MATCHES.labels(confirmed.name, "raw_lookup")
    before = counter._value.get()
    found = hma.get("/m/raw_lookup", {"signal": value, "signal_type": "pdq"}).json()["matches"]
    assert entry.pk in found and len(found) == 2
    assert counter._value.get() == before + 1
    assert [(m.bank, m.content_ids, m.route) for m in HOOKED] == [(confirmed.name, [entry.pk], "raw_lookup")]
