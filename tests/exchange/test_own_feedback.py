"""Our own verdicts on partners' hashes follow moderators' decisions, and the sync pushes them back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from exchange.entries import hash_rows_apply
from exchange.models import HashFeedback, Remote
from exchange.partners import partner_create
from exchange.signing import instance_public_key_b64
from exchange.stopncii.jobs import stopncii_bank
from exchange.sync import HttpAnswer, push_remote_feedback
from exchange.tasks import stopncii_feedback, stopncii_fetch
from exchange.validation import parse_hash_rows
from hashing.banks import bank_get_or_create
from hashing.models import Bank, BankEntry
from moderation.models import Appeal, Decision, Match, ReviewTask
from moderation.roles import MODERATOR, SENIOR
from moderation.services.appeals import appeal_decide
from moderation.services.decisions import decision_make
from tests.exchange.stopncii_stub import FUNCTION_KEYS, SUBSCRIPTION_KEY, StopNCIIStub
from tests.moderation.console_helpers import make_case, user_with_role

PARTNER_VALUE = "a" * 64
OTHER_VALUE = "b" * 64


@pytest.fixture
def remote(db: Any) -> Remote:
    """Remote "upstream", whose hashes the sync wrote into a local (not partner-kind) bank."""
    upstream = partner_create(name="upstream", organisation="Upstream Platform")
    bank = bank_get_or_create(name="from-upstream")
    remote = Remote.objects.create(partner=upstream, base_url="http://upstream.test", bank=bank,
                                   public_key=instance_public_key_b64(), api_key="td_test_key")
    hash_rows_apply(bank=bank, rows=parse_hash_rows([{"signal_type": "pdq", "value": PARTNER_VALUE}]),
                    partner=upstream)
    return remote


@pytest.fixture
def moderator(db: Any) -> User:
    return user_with_role("mod", MODERATOR)


def case_matching(*entries: BankEntry, pdq: str = PARTNER_VALUE) -> ReviewTask:
    task = make_case(pdq=pdq)
    media_hash = task.report.items.get().media.hashes.get()  # type: ignore[union-attr]
    for entry in entries:
        Match.objects.create(media=media_hash.media, media_hash=media_hash, bank_entry=entry,
                             algorithm=entry.algorithm, distance=0, threshold=31)
    return task


def own_verdicts() -> dict[str, str]:
    return dict(HashFeedback.objects.filter(partner=None).values_list("entry__value", "verdict"))


class Capture:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> HttpAnswer:
        assert (method, url) == ("POST", "http://upstream.test/api/v1/exchange/feedback")
        self.bodies.append(json.loads(body or b"{}"))
        return HttpAnswer(200, b"{}", {})


@pytest.mark.django_db
def test_a_takedown_of_media_matching_a_partners_hash_records_blocked_and_the_sync_pushes_it(
        remote: Remote, moderator: User) -> None:
    entry = BankEntry.objects.get(bank=remote.bank, value=PARTNER_VALUE)
    task = case_matching(entry)
    decision_make(task_id=task.pk, user=moderator, outcome=Decision.Outcome.TAKEDOWN, reason=Decision.Reason.NCII)
    assert own_verdicts() == {PARTNER_VALUE: "blocked"}
    capture = Capture()
    assert push_remote_feedback(remote, transport=capture) == 1
    assert capture.bodies == [{"feedback": [{"signal_type": "pdq", "value": PARTNER_VALUE, "verdict": "blocked",
                                             "tags": []}]}]


@pytest.mark.django_db
def test_no_violation_on_a_case_matching_a_partners_hash_records_not_blocked(remote: Remote,
                                                                           moderator: User) -> None:
    entry = BankEntry.objects.get(bank=remote.bank, value=PARTNER_VALUE)
    task = case_matching(entry)
    decision_make(task_id=task.pk, user=moderator, outcome=Decision.Outcome.NO_VIOLATION,
                  reason=Decision.Reason.NOT_INTIMATE)
    assert own_verdicts() == {PARTNER_VALUE: "not_blocked"}


@pytest.mark.django_db
def test_entries_not_from_partners_get_no_feedback(remote: Remote, moderator: User) -> None:
    local = bank_get_or_create(name="local-only")
    entry = BankEntry.objects.create(bank=local, algorithm="pdq", value=OTHER_VALUE, source="case:TD-X")
    task = case_matching(entry, pdq=OTHER_VALUE)
    decision_make(task_id=task.pk, user=moderator, outcome=Decision.Outcome.TAKEDOWN, reason=Decision.Reason.NCII)
    assert own_verdicts() == {}


@pytest.mark.django_db
def test_a_hash_in_a_partner_bank_counts_as_a_partners_even_without_exchange_metadata(moderator: User) -> None:
    stopncii = bank_get_or_create(name="stopncii", kind=Bank.Kind.PARTNER)
    entry = BankEntry.objects.create(bank=stopncii, algorithm="pdq", value=OTHER_VALUE, source="stopncii")
    task = case_matching(entry, pdq=OTHER_VALUE)
    decision_make(task_id=task.pk, user=moderator, outcome=Decision.Outcome.TAKEDOWN, reason=Decision.Reason.NCII)
    assert own_verdicts() == {OTHER_VALUE: "blocked"}


@pytest.mark.django_db
def test_a_takedown_reversed_on_appeal_flips_our_verdict_to_not_blocked(remote: Remote, moderator: User) -> None:
    entry = BankEntry.objects.get(bank=remote.bank, value=PARTNER_VALUE)
    task = case_matching(entry)
    result = decision_make(task_id=task.pk, user=moderator, outcome=Decision.Outcome.TAKEDOWN,
                           reason=Decision.Reason.NCII)
    capture = Capture()
    push_remote_feedback(remote, transport=capture)
    appeal = Appeal.objects.create(decision=result.decision, appellant_email="u@example.org", statement="It is me.")
    appeal_decide(appeal_id=appeal.pk, user=user_with_role("senior", SENIOR), reverse_decision=True,
                  note="The image is not intimate.")
    assert own_verdicts() == {PARTNER_VALUE: "not_blocked"}
    assert push_remote_feedback(remote, transport=capture) == 1
    assert capture.bodies[-1]["feedback"][0]["verdict"] == "not_blocked"


@pytest.mark.django_db
def test_a_hash_another_removed_case_matched_stays_blocked_when_a_copy_is_judged_fine(remote: Remote,
                                                                                    moderator: User) -> None:
    entry = BankEntry.objects.get(bank=remote.bank, value=PARTNER_VALUE)
    first, second = case_matching(entry), case_matching(entry, pdq="c" * 64)
    decision_make(task_id=first.pk, user=moderator, outcome=Decision.Outcome.TAKEDOWN, reason=Decision.Reason.NCII)
    decision_make(task_id=second.pk, user=moderator, outcome=Decision.Outcome.NO_VIOLATION,
                  reason=Decision.Reason.NOT_INTIMATE)
    assert own_verdicts() == {PARTNER_VALUE: "blocked"}


@pytest.fixture
def stopncii(tmp_path: Path) -> Iterator[StopNCIIStub]:
    """The local StopNCII stub, with the settings pointing the beat tasks at it."""
    with StopNCIIStub() as stub, override_settings(
            TAKEDOWN_STOPNCII_BASE_URL=stub.base_url, TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY=SUBSCRIPTION_KEY,
            TAKEDOWN_STOPNCII_FETCH_HASHES_KEY=FUNCTION_KEYS["FetchHashes"],
            TAKEDOWN_STOPNCII_SUBMIT_FEEDBACK_KEY=FUNCTION_KEYS["SubmitFeedback"],
            TAKEDOWN_STOPNCII_STATE_FILE=str(tmp_path / "stopncii-state.json"), TAKEDOWN_STOPNCII_ATTEMPTS=1):
        yield stub


@pytest.mark.django_db
def test_the_beat_tasks_fetch_stopnciis_hashes_and_send_back_our_verdict_after_a_takedown(
        stopncii: StopNCIIStub, moderator: User) -> None:
    stopncii.add_record(hash_value=PARTNER_VALUE, status="Active", timestamp=1_700_000_000)
    stopncii.add_record(hash_value=OTHER_VALUE, status="Active", timestamp=1_700_000_001)
    stopncii_fetch.apply()  # the task body, as the worker runs it
    bank = stopncii_bank()
    assert set(BankEntry.objects.filter(bank=bank).values_list("value", flat=True)) == {PARTNER_VALUE, OTHER_VALUE}
    task = case_matching(BankEntry.objects.get(bank=bank, value=PARTNER_VALUE))
    decision_make(task_id=task.pk, user=moderator, outcome=Decision.Outcome.TAKEDOWN, reason=Decision.Reason.NCII)
    stopncii_feedback.apply()
    sent = [r for r in stopncii.requests if r.endpoint == "SubmitFeedback"]
    assert [r.status for r in sent] == [200]
    assert [(f["hashValue"], f["feedbackValue"]) for f in sent[0].body["hashFeedbacks"]] == [(PARTNER_VALUE, "Blocked")]


@pytest.mark.django_db
def test_a_reporters_appeal_reversing_no_violation_records_blocked(remote: Remote, moderator: User) -> None:
    entry = BankEntry.objects.get(bank=remote.bank, value=PARTNER_VALUE)
    task = case_matching(entry)
    result = decision_make(task_id=task.pk, user=moderator, outcome=Decision.Outcome.NO_VIOLATION,
                           reason=Decision.Reason.NOT_INTIMATE)
    assert own_verdicts() == {PARTNER_VALUE: "not_blocked"}
    appeal = Appeal.objects.create(decision=result.decision, appellant=Appeal.Appellant.REPORTER,
                                   appellant_email="a@example.org", statement="It is me in the image.")
    appeal_decide(appeal_id=appeal.pk, user=user_with_role("senior", SENIOR), reverse_decision=True,
                  note="It is the reporter.")
    assert own_verdicts() == {PARTNER_VALUE: "blocked"}
