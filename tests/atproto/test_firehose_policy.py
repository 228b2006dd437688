"""The scanner's settings and commands without the reference servers: a bank's stream policy, set the way banks
are configured; ``manage.py atproto_scan``'s cursor commands and its refusal of a stream it cannot use."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from hashing.banks import InvalidThresholds, bank_configure, bank_get_or_create
from hashing.models import Bank
from moderation.models import StreamCursor
from moderation.services.atproto_scan import FirehoseScanner, firehose_name, firehose_url_checked
from tests.conftest import AS_ADMIN

pytestmark = pytest.mark.django_db


def test_a_new_bank_opens_cases_on_stream_matches_until_an_admin_says_otherwise(admin_user: User) -> None:
    bank = bank_get_or_create(name="confirmed-ncii")
    assert bank.on_stream_match == Bank.OnStreamMatch.CASE
    out = StringIO()

    call_command("bank", "configure", *AS_ADMIN, "confirmed-ncii", "--on-stream-match", "takedown", stdout=out)

    bank.refresh_from_db()
    assert bank.on_stream_match == Bank.OnStreamMatch.TAKEDOWN
    assert "on stream match: takedown" in out.getvalue()


def test_changing_a_banks_stream_policy_needs_an_admin(moderator: User) -> None:
    bank_get_or_create(name="confirmed-ncii")
    with pytest.raises(CommandError):
        call_command("bank", "configure", "--user", moderator.username, "confirmed-ncii", "--on-stream-match",
                     "takedown")
    assert Bank.objects.get(name="confirmed-ncii").on_stream_match == Bank.OnStreamMatch.CASE


def test_an_unknown_stream_policy_is_refused_with_the_choices() -> None:
    bank = bank_get_or_create(name="x")
    with pytest.raises(InvalidThresholds, match="case, takedown"):
        bank_configure(bank=bank, on_stream_match="delete-everything")


def test_the_command_says_what_to_set_when_no_stream_is_configured(settings: Any) -> None:
    settings.TAKEDOWN_ATPROTO_FIREHOSE_URL = ""
    with pytest.raises(CommandError, match="TAKEDOWN_ATPROTO_FIREHOSE_URL"):
        call_command("atproto_scan")
    settings.TAKEDOWN_ATPROTO_FIREHOSE_URL = "https://pds.example"
    with pytest.raises(CommandError, match="ws:// or wss://"):
        call_command("atproto_scan")


def test_the_command_shows_and_resets_the_cursor(settings: Any) -> None:
    settings.TAKEDOWN_ATPROTO_FIREHOSE_URL = "wss://PDS.example"
    StreamCursor.objects.create(name="firehose:pds.example", value="42")
    out = StringIO()

    call_command("atproto_scan", "--show-cursor", stdout=out)
    call_command("atproto_scan", "--reset-cursor", stdout=out)

    assert "firehose:pds.example: 42" in out.getvalue()
    assert not StreamCursor.objects.filter(name="firehose:pds.example").exists()


def test_a_stream_is_named_by_its_host_and_given_the_subscribe_path_when_it_has_none() -> None:
    assert firehose_url_checked("wss://bsky.network") == "wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos"
    url = "ws://localhost:2583/xrpc/com.atproto.sync.subscribeRepos?cursor=5"
    assert firehose_url_checked(url) == "ws://localhost:2583/xrpc/com.atproto.sync.subscribeRepos"
    assert firehose_name(firehose_url_checked(url)) == "firehose:localhost:2583"


def test_a_scanner_that_never_ran_has_no_cursor_until_one_is_saved() -> None:
    scanner = FirehoseScanner(url="wss://pds.example", blobs=object())  # type: ignore[arg-type]
    assert scanner.cursor() is None
    scanner.cursor_set(17)
    assert scanner.cursor() == 17
