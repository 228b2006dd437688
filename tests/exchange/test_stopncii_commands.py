"""``manage.py stopncii fetch|submit|feedback`` with the settings from the environment, against the stub."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from exchange.entries import feedback_record
from hashing.banks import bank_add_entries, bank_get_or_create
from hashing.models import BankEntry
from tests.exchange.stopncii_stub import FUNCTION_KEYS, SUBSCRIPTION_KEY, StopNCIIStub

pytestmark = pytest.mark.django_db


def pdq(n: int) -> str:
    return hashlib.sha256(f"pdq-{n}".encode()).hexdigest()


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[StopNCIIStub]:
    with StopNCIIStub() as server, override_settings(
            TAKEDOWN_STOPNCII_BASE_URL=server.base_url, TAKEDOWN_STOPNCII_SUBSCRIPTION_KEY=SUBSCRIPTION_KEY,
            TAKEDOWN_STOPNCII_FETCH_HASHES_KEY=FUNCTION_KEYS["FetchHashes"],
            TAKEDOWN_STOPNCII_SUBMIT_HASHES_KEY=FUNCTION_KEYS["SubmitHashes"],
            TAKEDOWN_STOPNCII_SUBMIT_FEEDBACK_KEY=FUNCTION_KEYS["SubmitFeedback"],
            TAKEDOWN_STOPNCII_STATE_FILE=str(tmp_path / "state.json"), TAKEDOWN_STOPNCII_PAGE_SIZE=2,
            TAKEDOWN_STOPNCII_BACKOFF_MS=0, TAKEDOWN_STOPNCII_ATTEMPTS=2):
        yield server


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("stopncii", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_fetch_submit_and_feedback_run_from_the_settings(stub: StopNCIIStub) -> None:
    for i in range(3):
        stub.add_record(hash_value=pdq(i), timestamp=1_700_000_000 + i)
    out, err = run("fetch")
    assert out == ("Fetched 2 pages into stopncii: 3 added, 0 already there, 0 withdrawn or deleted, 0 of signal "
                   "types we do not match, 0 partner verdicts recorded, 0 verdicts from CSPs that are not our "
                   "partners, 0 malformed records reported above.\n")
    assert err == ""  # no progress bar when standard error is not a terminal

    confirmed = bank_get_or_create(name="confirmed-takedowns")
    bank_add_entries(bank=confirmed, hashes=[("pdq", pdq(10))], source="case:TD-1")
    out, _ = run("submit", "--settle-seconds", "0", "--tag", "ncii")
    assert out.startswith("Submitted 1 hashes of confirmed-takedowns in 1 requests")
    assert stub.submitted_hashes[0]["CSPFeedbacks"] == [{"feedbackValue": "Blocked", "tags": ["ncii"]}]

    feedback_record(entry=BankEntry.objects.get(value=pdq(1)), partner=None, verdict="not_blocked")
    out, _ = run("feedback")
    assert out.startswith("Sent 1 verdicts on stopncii")
    assert stub.submitted_feedback == [{"hashValue": pdq(1), "feedbackValue": "NotBlocked", "tags": []}]


def test_a_fetch_that_cannot_reach_stopncii_fails_with_what_to_do(stub: StopNCIIStub) -> None:
    stub.add_record(hash_value=pdq(1), timestamp=1_700_000_000)
    stub.fail_next((503, b""), (503, b""))
    with pytest.raises(CommandError, match=r"failed 2 times \(HTTP 503\).*run the command again later"):
        run("fetch")


def test_missing_keys_name_the_setting_to_set(stub: StopNCIIStub) -> None:
    with override_settings(TAKEDOWN_STOPNCII_FETCH_HASHES_KEY=""), \
            pytest.raises(CommandError, match="set TAKEDOWN_STOPNCII_FETCH_HASHES_KEY"):
        run("fetch")
    assert stub.requests == []


def test_submit_from_a_bank_that_does_not_exist_names_the_banks(stub: StopNCIIStub, db: Any) -> None:
    with pytest.raises(CommandError, match="no bank named 'confirmed-takedowns'"):
        run("submit")
