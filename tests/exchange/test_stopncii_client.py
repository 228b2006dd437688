"""The StopNCII client and jobs against a local stub that checks every request against the documented format."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange.entries import feedback_record
from exchange.models import HashFeedback
from exchange.partners import partner_create
from exchange.stopncii.client import Endpoint, FetchPage, StopNCIIClient
from exchange.stopncii.errors import StopNCIIAuthError, StopNCIIConfigError, StopNCIIResponseError, StopNCIIUnavailable
from exchange.stopncii.jobs import stopncii_bank, stopncii_fetch, stopncii_send_feedback, stopncii_submit
from exchange.stopncii.store import StateFile
from hashing.banks import bank_add_entries, bank_get_or_create
from hashing.matching import match_hashes
from hashing.models import Bank, BankChange, BankEntry
from tests.exchange.stopncii_stub import FUNCTION_KEYS, SUBSCRIPTION_KEY, StopNCIIStub

pytestmark = pytest.mark.django_db


def pdq(n: int) -> str:
    return hashlib.sha256(f"pdq-{n}".encode()).hexdigest()


def md5(n: int) -> str:
    return hashlib.md5(f"md5-{n}".encode()).hexdigest()  # noqa: S324 - a test value, not security


@pytest.fixture
def stub() -> Iterator[StopNCIIStub]:
    with StopNCIIStub() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(stub: StopNCIIStub, sleeps: list[float], **overrides: Any) -> StopNCIIClient:
    options: dict[str, Any] = {
        "base_url": stub.base_url, "subscription_key": SUBSCRIPTION_KEY,
        "function_keys": {Endpoint(name): key for name, key in FUNCTION_KEYS.items()},
        "timeout": 5, "attempts": 3, "backoff_seconds": 0.2, "sleep": sleeps.append}
    options.update(overrides)
    return StopNCIIClient(**options)


@pytest.fixture
def client(stub: StopNCIIStub, sleeps: list[float]) -> StopNCIIClient:
    return make_client(stub, sleeps)


@pytest.fixture
def state(tmp_path: Path) -> StateFile:
    return StateFile(tmp_path / "stopncii-state.json")


@pytest.fixture
def bank(db: Any) -> Bank:
    return stopncii_bank("stopncii")


def seed(stub: StopNCIIStub, count: int, *, start: int = 1_700_000_000) -> list[str]:
    values = [pdq(i) for i in range(count)]
    for i, value in enumerate(values):
        stub.add_record(hash_value=value, timestamp=start + i, status="Active" if i % 2 else "Received")
    return values


def active_values(bank: Bank) -> set[str]:
    return set(BankEntry.objects.filter(bank=bank, status=BankEntry.Status.ACTIVE).values_list("value", flat=True))


# --- FetchHashes --------------------------------------------------------------------------------------------


def test_a_fetch_pages_through_every_record_into_the_bank_and_matchers_see_them(
        stub: StopNCIIStub, client: StopNCIIClient, bank: Bank, state: StateFile) -> None:
    values = seed(stub, 7)
    stub.add_record(hash_value=md5(1), signal_type="VideoMD5", timestamp=1_700_000_100)
    stub.add_record(hash_value="https://example.org/x", signal_type="URL", timestamp=1_700_000_101)

    result = stopncii_fetch(client=client, bank=bank, state=state, page_size=3)

    assert result.pages == 3
    assert (result.added, result.unsupported, result.errors) == (8, 1, [])
    assert active_values(bank) == {*values, md5(1)}
    fetches = stub.fetches()
    assert [r.query.get("nextPageToken") is None for r in fetches] == [True, False, False]
    assert {r.query["startTimestamp"] for r in fetches} == {"10"}  # the reference client's first start
    entry_ids = set(BankEntry.objects.filter(bank=bank).values_list("id", flat=True))
    assert entry_ids <= set(BankChange.objects.values_list("entry_id", flat=True))
    matches = match_hashes([("pdq", values[4])])
    assert [(m.bank_name, m.distance, m.blocks_uploads) for m in matches] == [("stopncii", 0, False)]
    assert state.section("fetch") == {"start_timestamp": 1_700_000_101, "next_page_token": "", "pages_done": 0,
                                      "saved_at": state.section("fetch")["saved_at"]}


def test_an_interrupted_fetch_resumes_at_the_page_it_stopped_on(
        stub: StopNCIIStub, sleeps: list[float], bank: Bank, state: StateFile) -> None:
    values = seed(stub, 9)
    client = make_client(stub, sleeps, attempts=2)

    def break_after_first_page(page: FetchPage) -> None:
        stub.fail_next((503, b'{"message": "down"}'), "drop")

    with pytest.raises(StopNCIIUnavailable, match="run the command again later"):
        stopncii_fetch(client=client, bank=bank, state=state, page_size=3, on_page=break_after_first_page)
    assert active_values(bank) == set(values[:3])
    saved_token = state.section("fetch")["next_page_token"]
    assert saved_token

    result = stopncii_fetch(client=client, bank=bank, state=state, page_size=3)

    assert result.resumed and result.pages == 2
    assert active_values(bank) == set(values)
    first_of_second_run = stub.fetches()[-2]
    assert first_of_second_run.query.get("nextPageToken") == saved_token
    assert sum(1 for r in stub.fetches() if "nextPageToken" not in r.query) == 1  # page 1 was never read again
    assert BankEntry.objects.filter(bank=bank).count() == 9
    assert BankChange.objects.count() == 9  # each entry changed once: no page applied twice


def test_a_finished_fetch_starts_the_next_at_nextSetTimestamp_and_applies_withdrawals(
        stub: StopNCIIStub, client: StopNCIIClient, bank: Bank, state: StateFile) -> None:
    values = seed(stub, 4)
    stopncii_fetch(client=client, bank=bank, state=state, page_size=10)
    assert match_hashes([("pdq", values[1])])

    stub.add_record(hash_value=values[1], status="Withdrawn", timestamp=1_700_001_000)
    stub.add_record(hash_value=values[2], status="Deleted", timestamp=1_700_001_001)
    stub.add_record(hash_value=pdq(99), status="Received", timestamp=1_700_001_002)
    result = stopncii_fetch(client=client, bank=bank, state=state, page_size=10)

    assert stub.fetches()[-1].query["startTimestamp"] == str(1_700_000_003)
    assert (result.added, result.withdrawn) == (1, 2)
    statuses = dict(BankEntry.objects.filter(bank=bank).values_list("value", "status"))
    assert statuses[values[1]] == BankEntry.Status.WITHDRAWN
    assert statuses[values[2]] == BankEntry.Status.DELETED
    assert statuses[pdq(99)] == BankEntry.Status.ACTIVE
    assert match_hashes([("pdq", values[1])]) == []


def test_an_expired_page_token_restarts_the_pass_from_its_start_timestamp(
        stub: StopNCIIStub, sleeps: list[float], bank: Bank, state: StateFile) -> None:
    values = seed(stub, 6)
    client = make_client(stub, sleeps, attempts=1)
    with pytest.raises(StopNCIIUnavailable):
        stopncii_fetch(client=client, bank=bank, state=state, page_size=2,
                       on_page=lambda page: stub.fail_next((502, b"")))
    stub.expire_tokens()

    result = stopncii_fetch(client=client, bank=bank, state=state, page_size=2)

    assert not result.resumed
    assert stub.requests[-4].status == 400  # the stale token, refused
    assert active_values(bank) == set(values)


def test_5xx_answers_and_dropped_connections_are_retried_with_growing_waits(
        stub: StopNCIIStub, client: StopNCIIClient, sleeps: list[float], bank: Bank, state: StateFile) -> None:
    values = seed(stub, 2)
    stub.fail_next((503, b'{"message": "busy"}'), "drop")

    stopncii_fetch(client=client, bank=bank, state=state)

    # Waits double from 0.2 s, each cut at random by up to half so that clients do not retry in step.
    assert len(sleeps) == 2
    assert 0.1 <= sleeps[0] <= 0.2 and 0.2 <= sleeps[1] <= 0.4
    assert active_values(bank) == set(values)


def test_a_malformed_answer_raises_a_typed_error_and_leaves_the_checkpoint(
        stub: StopNCIIStub, client: StopNCIIClient, bank: Bank, state: StateFile) -> None:
    seed(stub, 2)
    stub.fail_next((200, b"<html>gateway</html>"))
    with pytest.raises(StopNCIIResponseError, match="not JSON"):
        stopncii_fetch(client=client, bank=bank, state=state)
    stub.fail_next((200, json.dumps({"count": 0, "hashRecords": [], "nextPageToken": None}).encode()))
    with pytest.raises(StopNCIIResponseError, match="hasMoreRecords"):
        stopncii_fetch(client=client, bank=bank, state=state)
    assert state.load() == {}
    assert BankEntry.objects.filter(bank=bank).count() == 0


def test_a_malformed_record_is_reported_and_the_rest_of_its_page_applied(
        stub: StopNCIIStub, client: StopNCIIClient, bank: Bank, state: StateFile) -> None:
    values = seed(stub, 3)
    stub.add_record(hash_value="not-a-pdq", timestamp=1_700_000_050)
    stub.records.append({"signalType": "ImagePDQ", "hashValue": pdq(50), "hashStatus": "Maybe",
                         "lastModtimestamp": 1_700_000_051, "caseNumbers": {}})

    result = stopncii_fetch(client=client, bank=bank, state=state)

    assert active_values(bank) == set(values)
    assert len(result.errors) == 2
    assert "page 1 record 3: hashValue of a ImagePDQ record is 64 hex characters" in result.errors[1]
    assert result.errors[0].startswith("page 1 record 4: hashStatus must be one of Unknown, Received, Active")


def test_keys_the_api_refuses_raise_an_auth_error_naming_the_setting(
        stub: StopNCIIStub, sleeps: list[float], bank: Bank, state: StateFile) -> None:
    client = make_client(stub, sleeps, subscription_key="wrong")
    with pytest.raises(StopNCIIAuthError, match="TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY"):
        stopncii_fetch(client=client, bank=bank, state=state)
    assert sleeps == []  # a refused key is not retried


def test_a_missing_function_key_is_a_configuration_error_before_any_request(
        stub: StopNCIIStub, sleeps: list[float], bank: Bank, state: StateFile) -> None:
    client = make_client(stub, sleeps, function_keys={Endpoint.FETCH_HASHES: FUNCTION_KEYS["FetchHashes"]})
    with pytest.raises(StopNCIIConfigError, match="TAKEDOWN_STOPNCII_SUBMIT_HASHES_KEY"):
        client.submit_hashes([])
    assert stub.requests == []


def test_csp_feedbacks_from_our_partners_become_their_verdicts_on_the_entry(
        stub: StopNCIIStub, client: StopNCIIClient, bank: Bank, state: StateFile) -> None:
    partner = partner_create(name="northwind", organisation="Northwind Social")
    stopncii = partner_create(name="stopncii", organisation="StopNCII.org")
    stub.add_record(hash_value=pdq(1), timestamp=1_700_000_000, status="Active",
                    cases={"cc592711-7068-442f-b5d2-24d50d389751": "Active"}, feedbacks=[
                        {"source": "Northwind Social", "feedbackValue": "Blocked", "tags": ["Nude"]},
                        {"source": "Some Other CSP", "feedbackValue": "NotBlocked", "tags": []},
                        {"source": "northwind", "feedbackValue": "None", "tags": ["x"]}])

    result = stopncii_fetch(client=client, bank=bank, state=state)

    assert (result.feedback_recorded, result.feedback_unknown_source) == (1, 1)
    entry = BankEntry.objects.get(bank=bank, value=pdq(1))
    feedback = HashFeedback.objects.get(entry=entry)
    assert (feedback.partner, feedback.verdict, feedback.tags) == (partner, "blocked", ["Nude"])
    assert (entry.exchange.partner, entry.exchange.case_ref) == (stopncii, "cc592711-7068-442f-b5d2-24d50d389751")


# --- SubmitHashes / SubmitFeedback --------------------------------------------------------------------------


def test_submit_sends_each_newly_confirmed_hash_once_as_blocked(
        stub: StopNCIIStub, client: StopNCIIClient, state: StateFile) -> None:
    confirmed = bank_get_or_create(name="confirmed-takedowns")
    bank_add_entries(bank=confirmed, hashes=[("pdq", pdq(1)), ("md5", md5(1)), ("phash", "0f" * 8)],
                     source="case:TD-1")

    first = stopncii_submit(client=client, bank=confirmed, state=state, settle_seconds=0, tags=["ncii"])
    again = stopncii_submit(client=client, bank=confirmed, state=state, settle_seconds=0)
    bank_add_entries(bank=confirmed, hashes=[("pdq", pdq(2))], source="case:TD-2")
    later = stopncii_submit(client=client, bank=confirmed, state=state, settle_seconds=0)

    assert (first.submitted, first.unsupported, again.submitted, later.submitted) == (2, 1, 0, 1)
    sent = {(r["signalType"], r["hashValue"]): r for r in stub.submitted_hashes}
    assert set(sent) == {("ImagePDQ", pdq(1)), ("VideoMD5", md5(1)), ("ImagePDQ", pdq(2))}
    assert sent[("ImagePDQ", pdq(1))]["CSPFeedbacks"] == [{"feedbackValue": "Blocked", "tags": ["ncii"]}]
    assert all(r.status == 200 for r in stub.requests)


def test_submit_waits_for_changes_to_settle_before_sending_them(
        stub: StopNCIIStub, client: StopNCIIClient, state: StateFile) -> None:
    confirmed = bank_get_or_create(name="confirmed-takedowns")
    bank_add_entries(bank=confirmed, hashes=[("pdq", pdq(1))], source="case:TD-1")
    assert stopncii_submit(client=client, bank=confirmed, state=state, settle_seconds=3600).submitted == 0
    assert stopncii_submit(client=client, bank=confirmed, state=state, settle_seconds=0).submitted == 1


def test_feedback_sends_our_verdicts_once_and_again_when_they_change(
        stub: StopNCIIStub, client: StopNCIIClient, bank: Bank, state: StateFile) -> None:
    values = seed(stub, 3)
    stopncii_fetch(client=client, bank=bank, state=state)
    entries = {e.value: e for e in BankEntry.objects.filter(bank=bank)}
    feedback_record(entry=entries[values[0]], partner=None, verdict="blocked", tags=["deepfake"])
    feedback_record(entry=entries[values[1]], partner=None, verdict="not_blocked")

    first = stopncii_send_feedback(client=client, bank=bank, state=state)
    again = stopncii_send_feedback(client=client, bank=bank, state=state)
    feedback_record(entry=entries[values[1]], partner=None, verdict="blocked")
    changed = stopncii_send_feedback(client=client, bank=bank, state=state)

    assert (first.sent, again.sent, changed.sent) == (2, 0, 1)
    assert stub.submitted_feedback == [
        {"hashValue": values[0], "feedbackValue": "Blocked", "tags": ["deepfake"]},
        {"hashValue": values[1], "feedbackValue": "NotBlocked", "tags": []},
        {"hashValue": values[1], "feedbackValue": "Blocked", "tags": []},
    ]


# --- The stub itself, and Meta's reference client against it ----------------------------------------------


def raw(stub: StopNCIIStub, endpoint: str, payload: Any, **headers: str) -> tuple[int, str]:
    headers = {"Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY, "x-functions-key": FUNCTION_KEYS[endpoint],
               "Content-Type": "application/json", **headers}
    request = urllib.request.Request(  # noqa: S310 - the loopback stub
        f"{stub.base_url}/{endpoint}", data=json.dumps(payload).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback stub
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_stub_refuses_requests_that_deviate_from_the_documented_format(stub: StopNCIIStub) -> None:
    good = {"lastModtimestamp": 1, "signalType": "ImagePDQ", "hashValue": pdq(1),
            "CSPFeedbacks": [{"feedbackValue": "Blocked", "tags": []}]}
    assert raw(stub, "SubmitHashes", {"count": 1, "hashRecords": [good]})[0] == 200
    assert raw(stub, "SubmitHashes", {"count": 2, "hashRecords": [good]}) == (
        400, '{"message": "count is 2 but hashRecords holds 1"}')
    status, message = raw(stub, "SubmitHashes", {"count": 1, "hashRecords": [{**good, "signalType": "PDQ"}]})
    assert status == 400 and "hashRecords[0].signalType 'PDQ' is not one of" in message
    status, message = raw(stub, "SubmitFeedback", {"count": 1, "hashFeedbacks": [
        {"hashValue": pdq(1), "feedbackValue": "Yes", "tags": []}]})
    assert status == 400 and "feedbackValue 'Yes'" in message
    assert raw(stub, "SubmitFeedback", {}, **{"x-functions-key": FUNCTION_KEYS["FetchHashes"]})[0] == 401


def test_metas_reference_client_reads_the_stubs_pages_and_passes_its_checks(stub: StopNCIIStub) -> None:
    from threatexchange.exchanges.clients.stopncii import api as reference

    values = seed(stub, 5)
    stub.add_record(hash_value=values[0], status="Active", timestamp=1_700_000_200,
                    feedbacks=[{"source": "Facebook", "feedbackValue": "Blocked", "tags": ["Nude"]}])
    client = reference.StopNCIIAPI(SUBSCRIPTION_KEY, FUNCTION_KEYS["FetchHashes"], {
        reference.StopNCIIEndpoint.SubmitFeedback: FUNCTION_KEYS["SubmitFeedback"]}, base_url_override=stub.base_url)

    pages = list(client.fetch_hashes_iter())
    records = [record for page in pages for record in page.hashRecords]
    client.submit_feedback(reference.StopNCIISignalType.ImagePDQ, values[2],
                           reference.StopNCIICSPFeedbackValue.NotBlocked, {"reviewed"})

    assert len(pages) == 1 and {r.hashValue for r in records} == set(values)
    assert records[-1].CSPFeedbacks[0].feedbackValue == reference.StopNCIICSPFeedbackValue.Blocked
    assert stub.submitted_feedback == [{"tags": ["reviewed"], "feedbackValue": "NotBlocked", "hashValue": values[2]}]
