"""A client written only from HMA's documentation (tests/hma/hma_client.py) works against Takedown unchanged.

It runs over real HTTP against a live server, with the production refresh interval (1 s): it banks a photo,
finds it by hash and by file, disables it, and sees the disable take effect within 2 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from moderation.services.api_keys import api_key_create
from tests.hma.conftest import pdq_of
from tests.hma.hma_client import HmaClient, HmaError, matched_ids

pytestmark = pytest.mark.django_db(transaction=True)

DISABLE_BOUND_SECONDS = 2.0


@pytest.fixture
def client(live_server: Any, settings: Any) -> Any:
    settings.TAKEDOWN_MATCH_REFRESH_SECONDS = 1  # as in production: the 2 s bound must hold with it
    _row, key = api_key_create(kind="platform", name="hma platform", curation=True)
    with HmaClient(f"{live_server.url}/hma", headers={"Authorization": f"Bearer {key}"}) as hma:
        yield hma


def test_a_documentation_only_hma_client_banks_matches_and_disables(client: HmaClient,
                                                                    photo: Callable[[int], bytes]) -> None:
    assert client.status() == "I-AM-ALIVE"
    client.create_bank("PLATFORM_NCII")
    assert {"name": "PLATFORM_NCII", "matching_enabled_ratio": 1.0} in client.banks()
    added = client.add_photo("PLATFORM_NCII", photo(11), note="reported by a user",
                             metadata={"content_id": "post-1234"})
    content_id = int(added["id"])
    pdq = added["signals"]["pdq"]
    assert client.hash_photo(photo(11)) == {"pdq": pdq} == {"pdq": pdq_of(photo(11))}

    # By hash, by file, and raw: the banked photo is found.
    assert matched_ids(client.lookup("pdq", pdq), "PLATFORM_NCII") == {content_id}
    assert matched_ids(client.lookup_photo(photo(11))["pdq"], "PLATFORM_NCII") == {content_id}
    assert client.raw_lookup("pdq", pdq) == [content_id]
    stored = client.content("PLATFORM_NCII", content_id, include_signals=True)
    assert (stored["signals"], stored["note"], stored["metadata"]["content_id"]) == (
        {"pdq": pdq}, "reported by a user", "post-1234")
    assert client.compare("pdq", pdq, pdq)[0] is True

    # Disabled: gone from the answers within the bound.
    client.disable_content("PLATFORM_NCII", content_id)
    deadline = time.monotonic() + DISABLE_BOUND_SECONDS
    while True:
        still = (matched_ids(client.lookup("pdq", pdq), "PLATFORM_NCII")
                 | matched_ids(client.lookup_photo(photo(11))["pdq"], "PLATFORM_NCII"))
        if not still or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not still, f"content {content_id} still matched {DISABLE_BOUND_SECONDS} s after it was disabled"
    assert client.content("PLATFORM_NCII", content_id)["disable_until_ts"] == 0

    # Enabled again, then deleted.
    client.enable_content("PLATFORM_NCII", content_id)
    assert client.raw_lookup("pdq", pdq) == [content_id]
    assert client.delete_content("PLATFORM_NCII", content_id)["deleted"] == 1
    with pytest.raises(HmaError) as missing:
        client.content("PLATFORM_NCII", content_id)
    assert missing.value.status == 404


def test_a_documentation_only_hma_client_sees_hma_errors(client: HmaClient) -> None:
    with pytest.raises(HmaError) as bad_name:
        client.create_bank("lower_case")
    assert bad_name.value.status == 400
    with pytest.raises(HmaError) as bad_signal:
        client.lookup("pdq", "not a hash")
    assert bad_signal.value.status == 400 and bad_signal.value.message
