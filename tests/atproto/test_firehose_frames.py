"""Decoding the repository event stream, against frames captured from the AT Protocol reference PDS.

``firehose_frames/*.cbor`` are websocket messages exactly as ``@atproto/dev-env``'s PDS sent them (a throwaway
network; the accounts and posts were made for the capture, the pictures are generated). Broken frames are made
from them here. No servers are needed.
"""

from __future__ import annotations

from pathlib import Path

import libipld
import pytest

from moderation.services.atproto_firehose import (
    Frame,
    FrameError,
    ImageBlob,
    commit_image_posts,
    frame_decode,
    post_images,
)
from moderation.services.atproto_scan import CursorAhead, FirehoseScanner

FRAMES = Path(__file__).parent / "firehose_frames"
DID = "did:plc:fbwb4wjgzvygau55acnm4sna"
IMAGES_RKEY = "3n3zqgqxrm22i"
IMAGES_BLOB = "bafkreiejdxsj6yoaqsogcagqgmak2imhxnxbxct3dh4lff7ihb2agv3m3a"
QUOTE_RKEY = "3n3zqgr2uac2i"
QUOTE_BLOB = "bafkreifyrbpqz5jc6mqpsf4ckk4gwdomhbv2nsqang4w7b3mrxrpbrutby"


def captured(name: str) -> bytes:
    return (FRAMES / f"{name}.cbor").read_bytes()


def frame_of(header: object, body: object) -> bytes:
    return libipld.encode_dag_cbor(header) + libipld.encode_dag_cbor(body)


def test_a_commit_that_creates_a_post_with_images_yields_the_post_and_its_image_blob() -> None:
    frame = frame_decode(captured("commit_post_images"))

    assert frame.kind == "#commit" and frame.seq is not None and frame.time is not None
    found = commit_image_posts(frame)
    assert found.missing == []
    [post] = found.posts
    assert post.uri == f"at://{DID}/app.bsky.feed.post/{IMAGES_RKEY}"
    assert post.cid.startswith("bafyrei")
    assert post.images == (ImageBlob(cid=IMAGES_BLOB, mime_type="image/jpeg", size=post.images[0].size),)
    assert post.images[0].size and post.images[0].size > 0
    assert post.created_at is not None


def test_a_quote_post_with_pictures_yields_the_pictures_of_its_media() -> None:
    [post] = commit_image_posts(frame_decode(captured("commit_post_record_with_media"))).posts

    assert post.rkey == QUOTE_RKEY
    assert [image.cid for image in post.images] == [QUOTE_BLOB]


@pytest.mark.parametrize("name", ["commit_post_text", "commit_delete_post", "commit_empty"])
def test_commits_without_new_pictures_yield_nothing(name: str) -> None:
    frame = frame_decode(captured(name))

    assert frame.kind == "#commit"
    found = commit_image_posts(frame)
    assert found.posts == [] and found.missing == []


@pytest.mark.parametrize(("name", "kind"), [("identity", "#identity"), ("account", "#account"), ("sync", "#sync")])
def test_identity_account_and_sync_events_decode_with_their_seq_and_time(name: str, kind: str) -> None:
    frame = frame_decode(captured(name))

    assert frame.kind == kind
    assert isinstance(frame.seq, int) and frame.seq > 0
    assert frame.time is not None
    assert commit_image_posts(frame).posts == []


def test_the_servers_future_cursor_error_frame_is_an_error_frame_with_its_name() -> None:
    frame = frame_decode(captured("error_future_cursor"))

    assert frame.is_error
    assert frame.error_name == "FutureCursor"
    assert frame.seq is None


def test_an_outdated_cursor_info_frame_is_named() -> None:
    # The reference PDS sends #info only when asked for events older than it keeps; made here in its shape.
    frame = frame_decode(frame_of({"op": 1, "t": "#info"}, {"name": "OutdatedCursor", "message": "old"}))

    assert frame.kind == "#info" and frame.error_name == "OutdatedCursor" and frame.seq is None


def test_a_record_given_as_json_is_read_like_its_cbor_form() -> None:
    record = {"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2026-01-02T03:04:05.000Z",
              "embed": {"$type": "app.bsky.embed.images",
                        "images": [{"image": {"$type": "blob", "ref": {"$link": IMAGES_BLOB},
                                              "mimeType": "image/png", "size": 5}},
                                   {"image": {"cid": QUOTE_BLOB, "mimeType": "image/jpeg"}},  # the legacy form
                                   {"image": {"ref": {"$link": "not a cid!"}}}]}}

    post = post_images(did=DID, rkey="3abc", cid="bafyrei", record=record)

    assert post is not None
    assert [(i.cid, i.mime_type) for i in post.images] == [(IMAGES_BLOB, "image/png"), (QUOTE_BLOB, "image/jpeg")]


def test_a_commit_that_leaves_out_a_posts_record_names_it_for_fetching() -> None:
    frame = frame_decode(captured("commit_post_images"))
    body = dict(frame.body)
    body["blocks"] = b""  # what a tooBig commit of an older relay carries

    found = commit_image_posts(Frame(kind="#commit", body=body, seq=frame.seq))

    assert found.posts == []
    assert [(ref.did, ref.rkey) for ref in found.missing] == [(DID, IMAGES_RKEY)]


def _bad_frames() -> list[tuple[str, bytes, str]]:
    good = captured("commit_post_images")
    header, body = libipld.decode_dag_cbor_multi(good)
    return [
        ("empty", b"", "a header and a body"),
        ("random bytes", bytes(range(256)) * 4, "not DAG-CBOR"),
        ("truncated", good[: len(good) // 2], "not DAG-CBOR"),
        ("header only", libipld.encode_dag_cbor(header), "a header and a body"),
        ("three objects", good + libipld.encode_dag_cbor({}), "a header and a body"),
        ("header not a map", frame_of([1, 2], body), "must both be maps"),
        ("unknown op", frame_of({"op": 7, "t": "#commit"}, body), "unknown frame op"),
        ("no type", frame_of({"op": 1}, body), "no type"),
        ("negative seq", frame_of(header, {**body, "seq": -5}), "seq"),
        ("commit without seq", frame_of(header, {k: v for k, v in body.items() if k != "seq"}), "must carry a seq"),
    ]


@pytest.mark.parametrize(("what", "data", "says"), _bad_frames(), ids=[b[0] for b in _bad_frames()])
def test_a_bad_frame_gives_a_typed_error_that_says_what_is_wrong(what: str, data: bytes, says: str) -> None:
    with pytest.raises(FrameError) as error:
        frame_decode(data)

    assert says in str(error.value)


def test_a_text_message_is_refused_as_not_a_frame() -> None:
    with pytest.raises(FrameError, match="binary"):
        frame_decode("hello")  # type: ignore[arg-type]


@pytest.mark.parametrize(("change", "says"), [
    ({"repo": "alice"}, "not a DID"),
    ({"ops": "everything"}, "not a list"),
    ({"blocks": "not bytes"}, "not a CAR file"),
    ({"blocks": b"\x0a\x0b\x0c"}, "not a valid CAR file"),
])
def test_a_commit_with_broken_parts_gives_a_typed_error(change: dict[str, object], says: str) -> None:
    frame = frame_decode(captured("commit_post_images"))

    with pytest.raises(FrameError) as error:
        commit_image_posts(Frame(kind="#commit", body={**frame.body, **change}, seq=frame.seq))

    assert says in str(error.value)


def test_a_bad_frames_message_never_carries_its_bytes() -> None:
    secret = b"do-not-log-this-media" * 4
    with pytest.raises(FrameError) as error:
        frame_decode(secret)

    assert "do-not-log" not in str(error.value)


def scanner() -> FirehoseScanner:
    return FirehoseScanner(url="ws://pds.example", blobs=object())  # type: ignore[arg-type]


def test_the_scanner_passes_over_a_bad_frame_and_goes_on() -> None:
    one = scanner()

    assert one.handle(b"\xff\x00 not a frame") is False
    assert one.handle(captured("identity")) is True

    assert one.stats.frame_errors == 1 and one.stats.events == 1
    assert one.stats.last_seq == frame_decode(captured("identity")).seq


def test_the_servers_future_cursor_error_stops_the_scanner_with_what_to_do() -> None:
    with pytest.raises(CursorAhead, match="--reset-cursor"):
        scanner().handle(captured("error_future_cursor"))


def test_an_outdated_cursor_is_counted_and_scanning_goes_on() -> None:
    one = scanner()

    assert one.handle(frame_of({"op": 1, "t": "#info"}, {"name": "OutdatedCursor"})) is False
    assert one.handle(captured("account")) is True
