"""HMA's behaviour that its OpenAPI description does not show (../shared/hma/README.md), one example each."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable

import pytest

from hashing.banks import bank_configure
from hashing.models import Bank
from tests.hma.conftest import Hma, pdq_of

pytestmark = pytest.mark.django_db


def flipped(value: str, bits: int) -> str:
    """``value`` with its first ``bits`` bits inverted: a PDQ hash exactly ``bits`` away."""
    number = int(value, 16) ^ (((1 << bits) - 1) << (256 - bits))
    return f"{number:064x}"


def seed_with_flip(low: float, high: float) -> str:
    """A seed whose coin flip (``random.Random(seed).random()``, as HMA draws it) lies in [low, high)."""
    for n in range(10_000):
        if low <= random.Random(str(n)).random() < high:
            return str(n)
    raise AssertionError("no such seed")


@pytest.fixture
def bank(curator: Hma) -> str:
    assert curator.post("/c/banks", {"name": "QUIRKS"}).status_code == 201
    return "QUIRKS"


def add_pdq(curator: Hma, bank: str, value: str) -> int:
    response = curator.post(f"/c/bank/{bank}/signal", {"pdq": value})
    assert response.status_code == 200, response.content
    return int(response.json()["id"])


def test_an_error_is_a_message_with_the_status(hma: Hma, curator: Hma) -> None:
    response = hma.get("/m/raw_lookup", {"signal": "0" * 64, "signal_type": "tmk"})
    assert response.status_code == 400
    assert response.json() == {"message": "No such SignalType 'tmk'"}
    response = curator.get("/c/bank/NOT_THERE")
    assert (response.status_code, response.json()) == (404, {"message": "bank 'NOT_THERE' not found"})


def test_input_that_fails_the_schema_is_a_422_list_naming_the_field(hma: Hma) -> None:
    response = hma.get("/m/raw_lookup", {"signal_type": "pdq", "include_distance": "perhaps"})
    assert response.status_code == 422
    problems = {tuple(p["loc"]): p["type"] for p in response.json()}
    assert problems == {("signal",): "missing", ("include_distance",): "bool_parsing"}


def test_distances_are_strings_and_exact_hashes_have_none(hma: Hma, curator: Hma, bank: str) -> None:
    value = f"{random.Random(1).getrandbits(256):064x}"
    content_id = add_pdq(curator, bank, value)
    answer = hma.get("/m/raw_lookup", {"signal": flipped(value, 5), "signal_type": "pdq",
                                       "include_distance": "true"}).json()
    assert answer == {"matches": [{"bank_content_id": content_id, "distance": "5"}]}
    video = b"\x00\x00\x00\x18ftypmp42 not really a video"
    added = curator.post(f"/c/bank/{bank}/content", files={"video": video}).json()
    assert added["signals"] == {"video_md5": hashlib.md5(video, usedforsecurity=False).hexdigest()}
    found = hma.post("/m/lookup", files={"video": video}).json()
    assert found == {"video_md5": {bank: [{"bank_content_id": added["id"], "distance": "-"}]}}


def test_the_pdq_threshold_is_31_unless_the_bank_sets_its_own(hma: Hma, curator: Hma, bank: str) -> None:
    value = f"{random.Random(2).getrandbits(256):064x}"
    content_id = add_pdq(curator, bank, value)

    def raw(bits: int) -> list[int]:
        return hma.get("/m/raw_lookup", {"signal": flipped(value, bits), "signal_type": "pdq"}).json()["matches"]

    assert raw(31) == [content_id]
    assert raw(32) == []
    bank_configure(bank=Bank.objects.get(name="quirks"), thresholds={"pdq": 10})
    assert raw(10) == [content_id]
    assert raw(11) == []


def test_get_lookup_ignores_bypass_coinflip_and_post_lookup_honours_it(
        hma: Hma, curator: Hma, bank: str, photo: Callable[[int], bytes]) -> None:
    content_id = curator.post(f"/c/bank/{bank}/content", files={"photo": photo(7)}).json()["id"]
    assert curator.put(f"/c/bank/{bank}", {"enabled_ratio": 0.3}).json()["matching_enabled_ratio"] == 0.3
    pdq = pdq_of(photo(7))
    loses, wins = seed_with_flip(0.5, 1.0), seed_with_flip(0.0, 0.3)
    matched = [{"bank_content_id": content_id, "distance": "0"}]

    def get(seed: str, **extra: str) -> object:
        return hma.get("/m/lookup", {"signal": pdq, "signal_type": "pdq", "seed": seed, **extra}).json()

    assert get(wins) == {bank: matched}
    assert get(loses) == {}
    assert get(loses, bypass_coinflip="true") == {}  # GET ignores it
    post = hma.post("/m/lookup", files={"photo": photo(7)}, query=f"seed={loses}").json()
    assert post == {"pdq": {}}
    post = hma.post("/m/lookup", files={"photo": photo(7)}, query=f"seed={loses}&bypass_coinflip=true").json()
    assert post == {"pdq": {bank: matched}}


def test_the_same_seed_draws_the_same_coin_flip_every_time(hma: Hma, curator: Hma, bank: str) -> None:
    value = f"{random.Random(3).getrandbits(256):064x}"
    add_pdq(curator, bank, value)
    curator.put(f"/c/bank/{bank}", {"enabled_ratio": 0.5})
    seed = seed_with_flip(0.4, 0.6)
    answers = {str(hma.get("/m/lookup", {"signal": value, "signal_type": "pdq", "seed": seed}).json())
               for _ in range(5)}
    assert len(answers) == 1


def test_adding_content_answers_200_and_creating_a_bank_201(curator: Hma, bank: str,
                                                            photo: Callable[[int], bytes]) -> None:
    assert curator.post(f"/c/bank/{bank}/content", files={"photo": photo(8)}).status_code == 200
    assert curator.post(f"/c/bank/{bank}/signal", {"pdq": pdq_of(photo(9))}).status_code == 200
    assert curator.post("/c/banks", {"name": "ANOTHER"}).status_code == 201


def test_bank_names_follow_hmas_rule(curator: Hma) -> None:
    assert curator.post("/c/banks", {"name": "01_TEST_BANK"}).status_code == 400
    assert curator.post("/c/banks", {"name": "my_test_bank"}).status_code == 400
    assert curator.post("/c/banks", {"name": "MY-TEST"}).status_code == 400
    assert curator.post("/c/banks", {"name": "_MY_TEST_BANK_01"}).status_code == 201
    assert curator.post("/c/banks", {"name": "_MY_TEST_BANK_01"}).status_code == 403
    assert curator.put("/c/bank/_MY_TEST_BANK_01", {"name": "1_invalid_name"}).status_code == 400


def test_deleting_a_bank_that_is_not_there_succeeds(curator: Hma) -> None:
    response = curator.delete("/c/bank/NEVER_THERE")
    assert (response.status_code, response.json()) == (200, {"message": "Done"})


def test_deleting_content_answers_how_many_were_deleted(curator: Hma, bank: str) -> None:
    content_id = add_pdq(curator, bank, "a" * 64)
    assert curator.delete(f"/c/bank/{bank}/content/{content_id}").json()["deleted"] == 1
    assert curator.delete(f"/c/bank/{bank}/content/{content_id}").json()["deleted"] == 0


def test_disable_until_more_than_five_years_ahead_is_refused(curator: Hma, bank: str) -> None:
    content_id = add_pdq(curator, bank, "b" * 64)
    response = curator.put(f"/c/bank/{bank}/content/{content_id}", {"disable_until_ts": 9_999_999_999})
    assert response.status_code == 400
    assert "5 years" in response.json()["message"]
    soon = int(time.time()) + 3600
    response = curator.put(f"/c/bank/{bank}/content/{content_id}", {"disable_until_ts": soon})
    assert response.json()["disable_until_ts"] == soon


def test_a_photo_too_flat_for_pdq_hashes_to_an_empty_string_as_in_hma(hma: Hma) -> None:
    import io

    from PIL import Image

    flat = io.BytesIO()
    Image.new("RGB", (200, 200), (128, 128, 128)).save(flat, "PNG")
    assert hma.post("/h/hash", files={"photo": flat.getvalue()}).json() == {"pdq": ""}
    response = hma.post("/m/lookup", files={"photo": flat.getvalue()})
    assert response.status_code == 400
    assert "quality" in response.json()["message"]


def test_an_unknown_route_or_method_answers_json(hma: Hma) -> None:
    response = hma.get("/m/nothing_here")
    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    response = hma.client.delete("/hma/m/raw_lookup", **hma.headers)
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    response = hma.get("/ui/banks")
    assert response.status_code == 404 and "console" in response.json()["message"]
