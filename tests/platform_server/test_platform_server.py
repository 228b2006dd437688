"""The loopback platform itself, checked against docs/platforms.md, docs/platform-api.yaml and docs/webhooks.md
over real sockets, without any of Takedown's code: if these pass, the platform behaves as the docs say a host
platform does, and the tests that point Takedown at it test Takedown."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.platform_server.fixtures import LoopbackPlatform, contract_validator, make_image, running_platform
from tests.platform_server.runner import new_secret


@pytest.fixture(scope="module")
def shared_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackPlatform]:
    """One process for the failure-scenario tests; each uses its own post, so counters do not mix."""
    with running_platform(tmp_path_factory.mktemp("shared-platform")) as platform:
        yield platform


def eventually(condition: Callable[[], Any], what: str, within: float = 15.0) -> Any:
    """Polls until ``condition()`` is truthy (a wait, not a timing assertion)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def errors(payload: Any, schema: str = "ResolveAnswer") -> list[str]:
    return [error.message for error in contract_validator(schema).iter_errors(payload)]


def item_url(platform: LoopbackPlatform, post_id: str | int, index: int = 0) -> str:
    answer = platform.resolve(platform.location(post_id))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["items"][index]["url"])


def media_entries(platform: LoopbackPlatform, media_id: str) -> list[dict[str, Any]]:
    return [entry for entry in platform.log()["media"] if entry["media_id"] == media_id]


# --- resolve -------------------------------------------------------------------------------------------------


def test_a_signed_resolve_answers_the_posts_media_as_the_contract_describes(
        loopback_platform: LoopbackPlatform) -> None:
    platform = loopback_platform
    answer = platform.resolve(platform.location(1))

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    payload = answer.json()
    assert errors(payload) == []
    assert payload["location"] == "https://platform.test/p/1"
    assert payload["uploader"] == "user-1"
    assert [item["id"] for item in payload["items"]] == ["m-1-0", "m-1-1"]
    with platform.client() as client:
        for item in payload["items"]:
            assert item["url"].startswith(f"{platform.base_url}/media/{item['id']}?")
            media = client.get(item["url"])
            assert media.status_code == 200
            assert media.headers["content-type"] == item["content_type"] == "image/jpeg"
            assert len(media.content) == item["size"]
            assert Image.open(io.BytesIO(media.content)).format == "JPEG"
    [logged] = platform.log()["resolve"]
    assert logged["location"] == "https://platform.test/p/1"
    assert logged["signature_verified"] is True
    assert logged["webhook_id"].startswith("resolve-")
    assert logged["problems"] == []


def test_the_contract_schema_check_rejects_answers_that_break_the_contract() -> None:
    good = {"items": [{"url": "http://127.0.0.2:1/media/m-1"}], "posted_at": "2026-11-30T17:04:11Z"}
    assert errors(good) == []
    assert errors({"location": "https://platform.test/p/1"}) != []  # no items
    assert errors({"items": []}) != []  # at least one item
    assert errors({"items": [{"id": "m-1"}]}) != []  # an item without its url
    assert errors({"items": [{"url": "/media/m-1"}]}) != []  # not an absolute URL
    assert errors({**good, "posted_at": "yesterday"}) != []
    assert errors({"items": [{"url": "http://x.test/m"}] * 51}) != []


@pytest.mark.parametrize("tamper", ["another secret", "another body", "no headers", "a stale timestamp",
                                    "a timestamp from the future"])
def test_a_resolve_that_is_not_signed_with_the_shared_secret_is_refused_with_401(
        loopback_platform: LoopbackPlatform, tamper: str) -> None:
    platform = loopback_platform
    body = json.dumps({"type": "content.resolve", "location": platform.location(1)}).encode()
    headers: dict[str, str] = {
        "another secret": lambda: platform.signed_headers(body, secret=new_secret()),
        "another body": lambda: platform.signed_headers(body.replace(b"/p/1", b"/p/2")),
        "no headers": dict,
        "a stale timestamp": lambda: platform.signed_headers(body, timestamp=datetime.now(UTC) - timedelta(minutes=6)),
        "a timestamp from the future": lambda: platform.signed_headers(
            body, timestamp=datetime.now(UTC) + timedelta(minutes=6)),
    }[tamper]()

    answer = platform.resolve(platform.location(1), headers=headers, body=body)

    assert answer.status_code == 401
    assert errors(answer.json(), "Error") == []
    assert "items" not in answer.json()
    [logged] = platform.log()["resolve"]
    assert logged["signature_verified"] is False
    assert logged["auth_ok"] is False


def test_with_the_bearer_scheme_only_the_shared_token_is_accepted(tmp_path: Path) -> None:
    with running_platform(tmp_path, auth="bearer") as platform:
        assert platform.resolve(platform.location(1)).status_code == 200
        wrong = platform.resolve(platform.location(1), headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        body = json.dumps({"type": "content.resolve", "location": platform.location(1)}).encode()
        signed_only = platform.resolve(platform.location(1), headers=platform.signed_headers(body), body=body)
        assert signed_only.status_code == 401
        assert [entry["auth_ok"] for entry in platform.log()["resolve"]] == [True, False, False]


def test_a_location_on_the_alias_host_resolves_and_is_logged_as_not_canonical(
        loopback_platform: LoopbackPlatform) -> None:
    answer = loopback_platform.resolve("https://www.platform.test/p/1")

    assert answer.status_code == 200
    assert answer.json()["location"] == "https://platform.test/p/1"
    [logged] = loopback_platform.log()["resolve"]
    assert logged["location"] == "https://www.platform.test/p/1"
    assert logged["problems"] and "canonical" in logged["problems"][0]


@pytest.mark.parametrize("location", ["https://platform.test/p/404", "https://elsewhere.test/p/1",
                                      "https://platform.test/", "https://platform.test/search"])
def test_a_location_with_no_post_answers_404_with_an_error(loopback_platform: LoopbackPlatform,
                                                           location: str) -> None:
    answer = loopback_platform.resolve(location)

    assert answer.status_code == 404
    assert errors(answer.json(), "Error") == []
    assert answer.json()["error"]


@pytest.mark.parametrize(("body", "field"), [
    (b"not json", "body"),
    (b'["content.resolve"]', "body"),
    (b'{"type": "content.remove", "location": "https://platform.test/p/1"}', "type"),
    (b'{"type": "content.resolve"}', "location"),
])
def test_a_malformed_resolve_request_is_refused_with_400_naming_the_field(
        loopback_platform: LoopbackPlatform, body: bytes, field: str) -> None:
    platform = loopback_platform
    answer = platform.resolve("", headers=platform.signed_headers(body), body=body)

    assert answer.status_code == 400
    assert answer.json()["error"].startswith(f"{field}:")


def test_a_resolve_request_with_a_field_it_does_not_know_is_answered_as_usual(
        loopback_platform: LoopbackPlatform) -> None:
    body = b'{"type": "content.resolve", "location": "https://platform.test/p/1", "later": 1}'
    answer = loopback_platform.resolve("", headers=loopback_platform.signed_headers(body), body=body)
    assert answer.status_code == 200
    assert len(answer.json()["items"]) == 2


# --- takedown webhooks ---------------------------------------------------------------------------------------


def test_a_takedown_webhook_makes_resolve_answer_410_and_media_410_until_a_restore(
        loopback_platform: LoopbackPlatform) -> None:
    platform = loopback_platform
    url = item_url(platform, 1)

    removed = platform.send_hook("content.remove", platform.location(1), msg_id="decision-1-item-1-remove")

    assert removed.status_code == 200
    assert platform.state()["posts"] == {"1": "removed"}
    assert platform.state()["statements"]["1"]["puid"] == "takedown-decision-1-item-1-remove"
    gone = platform.resolve(platform.location(1))
    assert gone.status_code == 410
    assert errors(gone.json(), "Error") == []
    with platform.client() as client:
        assert client.get(url).status_code == 410

        restored = platform.send_hook("content.restore", platform.location(1), msg_id="decision-2-item-1-restore")

        assert restored.status_code == 200
        assert platform.state()["posts"] == {"1": "live"}
        assert platform.resolve(platform.location(1)).status_code == 200
        assert client.get(url).status_code == 200
    hooks = platform.log()["hooks"]
    assert [(h["event"], h["idempotency_key"], h["applied"]) for h in hooks] == [
        ("content.remove", "decision-1-item-1-remove", True), ("content.restore", "decision-2-item-1-restore", True)]
    assert hooks[0]["statement"]["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert hooks[1]["statement"] is None
    assert [h["problems"] for h in hooks] == [[], []]


def test_a_replayed_webhook_id_is_answered_2xx_but_not_applied_twice(loopback_platform: LoopbackPlatform) -> None:
    platform = loopback_platform
    location = platform.location(1)
    assert platform.send_hook("content.remove", location, msg_id="decision-5-item-1-remove").status_code == 200
    assert platform.send_hook("content.restore", location, msg_id="decision-6-item-1-restore").status_code == 200

    replay = platform.send_hook("content.remove", location, msg_id="decision-5-item-1-remove")

    assert replay.status_code == 200
    assert platform.state()["posts"] == {"1": "live"}
    assert [(h["applied"], h["replay"]) for h in platform.log()["hooks"]] == [(True, False), (True, False),
                                                                             (False, True)]


def test_removing_removed_content_and_restoring_live_content_succeed(loopback_platform: LoopbackPlatform) -> None:
    platform = loopback_platform
    location = platform.location(1)
    assert platform.send_hook("content.restore", location, msg_id="decision-7-item-1-restore").status_code == 200
    assert platform.send_hook("content.remove", location, msg_id="decision-8-item-1-remove").status_code == 200
    assert platform.send_hook("content.remove", location, msg_id="decision-9-item-1-remove").status_code == 200
    assert platform.state()["posts"] == {"1": "removed"}


def test_a_webhook_with_a_bad_signature_is_refused_with_401_and_not_applied(
        loopback_platform: LoopbackPlatform) -> None:
    platform = loopback_platform
    stale = datetime.now(UTC) - timedelta(minutes=10)
    for options in ({"secret": new_secret()}, {"timestamp": stale}):
        answer = platform.send_hook("content.remove", platform.location(1), msg_id="decision-3-item-1-remove",
                                    **options)
        assert answer.status_code == 401
    assert platform.state()["posts"] == {"1": "live"}
    assert platform.state()["handled"] == {}
    assert [h["signature_verified"] for h in platform.log()["hooks"]] == [False, False]


def test_a_webhook_whose_body_key_is_not_its_webhook_id_is_refused_with_400(
        loopback_platform: LoopbackPlatform) -> None:
    platform = loopback_platform
    payload = {"event": "content.remove", "idempotency_key": "decision-1-item-1-remove",
               "location": platform.location(1), "reason": "r", "sent_at": datetime.now(UTC).isoformat(),
               "statement": {}}
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **platform.signed_headers(body, msg_id="another-id")}
    with platform.client() as client:
        answer = client.post(platform.hooks_url, content=body, headers=headers)

    assert answer.status_code == 400
    assert answer.json()["error"].startswith("idempotency_key:")
    assert platform.state()["posts"] == {"1": "live"}


def test_an_unknown_event_is_refused_with_422_and_unknown_content_answers_404(
        loopback_platform: LoopbackPlatform) -> None:
    platform = loopback_platform
    unknown_event = platform.send_hook("content.frobnicate", platform.location(1), msg_id="decision-4-x")
    unknown_post = platform.send_hook("content.remove", platform.location(99), msg_id="decision-4-item-9-remove")

    assert unknown_event.status_code == 422
    assert unknown_post.status_code == 404
    assert platform.state()["posts"] == {"1": "live"}


def test_a_receiver_set_to_fail_twice_answers_500_twice_then_applies_the_action_once(
        loopback_platform: LoopbackPlatform) -> None:
    platform = loopback_platform
    platform.set_hooks_behaviour({"kind": "fail_first", "count": 2})
    statuses = [platform.send_hook("content.remove", platform.location(1), msg_id="decision-11-item-1-remove")
                .status_code for _ in range(4)]

    assert statuses == [500, 500, 200, 200]
    assert platform.state()["posts"] == {"1": "removed"}
    assert [h["applied"] for h in platform.log()["hooks"]] == [False, False, True, False]


# --- failure scenarios of resolve ----------------------------------------------------------------------------


@pytest.mark.parametrize(("post_id", "behaviour", "status"), [
    (201, {"kind": "status", "status": 404}, 404),
    (202, {"kind": "status", "status": 410}, 410),
    (203, {"kind": "status", "status": 503}, 503),
    (204, {"kind": "status", "status": 403}, 403),
])
def test_a_post_set_to_answer_a_status_answers_it_with_an_error_body(
        shared_platform: LoopbackPlatform, post_id: int, behaviour: dict[str, Any], status: int) -> None:
    shared_platform.add_post(post_id, behaviour=behaviour)

    answer = shared_platform.resolve(shared_platform.location(post_id))

    assert answer.status_code == status
    assert errors(answer.json(), "Error") == []


def test_a_post_set_to_answer_429_says_when_to_retry(shared_platform: LoopbackPlatform) -> None:
    shared_platform.add_post(205, behaviour={"kind": "status", "status": 429, "retry_after": 7})

    answer = shared_platform.resolve(shared_platform.location(205))

    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"


def test_a_post_set_to_fail_first_answers_500_that_many_times_then_200(shared_platform: LoopbackPlatform) -> None:
    shared_platform.add_post(206, behaviour={"kind": "fail_first", "count": 2})

    answers = [shared_platform.resolve(shared_platform.location(206)) for _ in range(3)]

    assert [a.status_code for a in answers] == [500, 500, 200]
    assert errors(answers[2].json()) == []


def test_a_post_set_to_not_json_answers_200_with_an_html_page(shared_platform: LoopbackPlatform) -> None:
    shared_platform.add_post(207, behaviour={"kind": "not_json"})

    answer = shared_platform.resolve(shared_platform.location(207))

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        answer.json()


def test_a_post_set_to_no_items_answers_json_that_the_contract_rejects(shared_platform: LoopbackPlatform) -> None:
    shared_platform.add_post(208, behaviour={"kind": "no_items"})

    answer = shared_platform.resolve(shared_platform.location(208))

    assert answer.status_code == 200
    assert answer.json()["uploader"] == "user-1"
    assert "items" not in answer.json()
    assert any("'items' is a required property" in e for e in errors(answer.json()))


def test_a_post_set_to_redirect_answers_302_to_the_set_address(shared_platform: LoopbackPlatform) -> None:
    shared_platform.add_post(209, behaviour={"kind": "redirect", "to": "http://elsewhere.test:{port}/resolve"})

    answer = shared_platform.resolve(shared_platform.location(209))

    assert answer.status_code == 302
    assert answer.headers["location"] == f"http://elsewhere.test:{shared_platform.port}/resolve"


def test_a_slow_post_sends_nothing_before_its_delay(shared_platform: LoopbackPlatform) -> None:
    shared_platform.add_post(210, behaviour={"kind": "slow_first_byte", "seconds": 3})

    with pytest.raises(httpx.ReadTimeout):
        shared_platform.resolve(shared_platform.location(210), timeout=0.3)


# --- failure scenarios of downloads --------------------------------------------------------------------------


def test_a_download_without_a_valid_link_signature_is_refused_with_403(shared_platform: LoopbackPlatform) -> None:
    url = item_url(shared_platform, 1)
    base = url.split("?")[0]
    with shared_platform.client() as client:
        assert client.get(url).status_code == 200
        assert client.get(base).status_code == 403
        assert client.get(url.replace("sig=", "sig=x")).status_code == 403
        assert client.get(f"{base}?exp=1&sig={url.split('sig=')[1]}").status_code == 403
        assert client.get(f"{shared_platform.base_url}/media/m-none-0").status_code == 404


def test_a_media_item_set_to_answer_404_or_to_fail_first_does_so(shared_platform: LoopbackPlatform) -> None:
    shared_platform.add_post(301, [make_image(1), make_image(2)],
                             media_behaviour=[{"kind": "status", "status": 404}, {"kind": "fail_first", "count": 1}])
    with shared_platform.client() as client:
        assert client.get(item_url(shared_platform, 301, 0)).status_code == 404
        assert [client.get(item_url(shared_platform, 301, 1)).status_code for _ in range(2)] == [500, 200]


def test_a_slow_media_item_sends_nothing_before_its_delay(shared_platform: LoopbackPlatform) -> None:
    shared_platform.add_post(302, media_behaviour={"kind": "slow_first_byte", "seconds": 3})
    url = item_url(shared_platform, 302)

    with shared_platform.client(timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.get(url)


def test_an_endless_media_item_streams_until_the_client_hangs_up(shared_platform: LoopbackPlatform) -> None:
    [media_id] = shared_platform.add_post(303, media_behaviour={"kind": "endless"})
    url = item_url(shared_platform, 303)
    received = bytearray()

    with shared_platform.client() as client, client.stream("GET", url) as answer:
        assert answer.status_code == 200
        assert "content-length" not in answer.headers
        assert answer.headers["transfer-encoding"] == "chunked"
        for chunk in answer.iter_bytes():
            received += chunk
            if len(received) > 8 << 20:
                break

    assert received.startswith(b"\xff\xd8\xff")
    [entry] = eventually(lambda: [e for e in media_entries(shared_platform, media_id) if e["ended"] == "client_gone"],
                         "the server noticing the client hung up")
    assert entry["bytes_sent"] >= len(received)


def test_a_media_item_with_a_huge_length_claims_2_gib_and_trickles(shared_platform: LoopbackPlatform) -> None:
    [media_id] = shared_platform.add_post(304, media_behaviour={"kind": "huge_length", "interval": 0.2})
    url = item_url(shared_platform, 304)

    with shared_platform.client() as client, client.stream("GET", url) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-length"] == "2147483648"
        first = next(answer.iter_raw())

    assert first.startswith(b"\xff\xd8\xff")
    assert len(first) < 1024
    eventually(lambda: [e for e in media_entries(shared_platform, media_id) if e["ended"] == "client_gone"],
               "the server noticing the client hung up")


def test_media_items_set_to_redirect_point_at_another_host_and_at_localhost(
        shared_platform: LoopbackPlatform) -> None:
    media_ids = shared_platform.add_post(305, [make_image(3), make_image(4)], media_behaviour=[
        {"kind": "redirect_elsewhere"}, {"kind": "redirect_localhost"}])
    port = shared_platform.port
    with shared_platform.client() as client:
        elsewhere = client.get(item_url(shared_platform, 305, 0))
        local = client.get(item_url(shared_platform, 305, 1))

    assert elsewhere.status_code == 302
    assert elsewhere.headers["location"] == f"http://elsewhere.test:{port}/media/x"
    assert local.status_code == 302
    assert local.headers["location"].startswith(f"http://localhost:{port}/media/{media_ids[1]}?exp=")


def test_media_items_with_a_wrong_content_type_send_the_other_kind_of_bytes(
        shared_platform: LoopbackPlatform) -> None:
    shared_platform.add_post(306, [make_image(5), make_image(6)],
                             media_behaviour=[{"kind": "html_as_jpeg"}, {"kind": "jpeg_as_html"}])
    with shared_platform.client() as client:
        html = client.get(item_url(shared_platform, 306, 0))
        jpeg = client.get(item_url(shared_platform, 306, 1))

    assert html.headers["content-type"] == "image/jpeg"
    assert html.content.startswith(b"<!DOCTYPE html>")
    assert jpeg.headers["content-type"].startswith("text/html")
    assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"


# --- setting the platform up ---------------------------------------------------------------------------------


def test_a_post_added_at_run_time_resolves_with_its_own_types_and_per_item_details(
        shared_platform: LoopbackPlatform) -> None:
    png = make_image(7).convert("RGBA")
    gif = io.BytesIO()
    make_image(8).save(gif, format="GIF")
    shared_platform.add_post("abc-1", [png, gif.getvalue()], uploader="user-77", posted_at="2026-03-01T10:00:00Z")

    payload = shared_platform.resolve(shared_platform.location("abc-1")).json()

    assert errors(payload) == []
    assert [item["content_type"] for item in payload["items"]] == ["image/png", "image/gif"]
    assert (payload["uploader"], payload["posted_at"]) == ("user-77", "2026-03-01T10:00:00Z")


def test_a_post_with_an_unknown_behaviour_is_refused_naming_the_field(shared_platform: LoopbackPlatform) -> None:
    with pytest.raises(AssertionError, match=r"media\[0\]\.behaviour\.kind"):
        shared_platform.add_post(307, media_behaviour={"kind": "explode"})


def test_download_urls_point_at_the_media_base_when_one_is_set(tmp_path: Path) -> None:
    with running_platform(tmp_path, media_base="http://media.platform.test:8443/") as platform:
        payload = platform.resolve(platform.location(1)).json()

    assert errors(payload) == []
    assert payload["items"][0]["url"].startswith("http://media.platform.test:8443/media/m-1-0?exp=")


def test_the_platform_listens_on_127_0_0_2_only_and_leaves_no_process_behind(tmp_path: Path) -> None:
    with running_platform(tmp_path) as platform:
        group = platform.server.process.pid
        assert platform.base_url == f"http://127.0.0.2:{platform.port}"
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", platform.port)) != 0
        assert len(processes_in_group(group)) >= 2  # gunicorn's arbiter and its one worker

    assert processes_in_group(group) == []


def processes_in_group(group: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(entry))
    return found
