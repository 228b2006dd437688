"""Reading the AT Protocol repository event stream (``com.atproto.sync.subscribeRepos``, the "firehose").

Each websocket message is two DAG-CBOR objects back to back: a header ``{"op": 1, "t": "#commit"}`` (``op``
-1 for an error frame) and the body. A ``#commit`` body carries the changed records as a CAR file in
``blocks``; its ``ops`` say which paths were created, updated or deleted and the CID of each new record.
Decoding is libipld's (Rust); this module turns what it returns into typed values and finds the new
posts that carry images, which is all the scanner (``services/atproto_scan.py``) needs.

Every way a frame can be unusable raises :class:`FrameError` with a message that says what was wrong; the
bytes themselves are never put in a message or a log.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import libipld

from moderation.platforms.atproto import parse_time

# Record collections and embed types (the app.bsky lexicons).
POST_COLLECTION = "app.bsky.feed.post"
EMBED_IMAGES = "app.bsky.embed.images"
EMBED_RECORD_WITH_MEDIA = "app.bsky.embed.recordWithMedia"
# The images lexicon allows 4 per post; a record that names more is not the app's, and the scanner looks at
# this many at most so that one record cannot make it fetch without end.
MAX_IMAGES_PER_POST = 10
# Frame kinds (the header's ``t``) the scanner knows; any other is counted and passed over, as the
# specification asks of consumers ("ignore unknown message types").
COMMIT, IDENTITY, ACCOUNT, SYNC, INFO = "#commit", "#identity", "#account", "#sync", "#info"


class FrameError(ValueError):
    """A frame that cannot be read as the specification describes; the message says what was wrong."""


@dataclass(frozen=True)
class Frame:
    """One message of the stream. ``kind`` is the header's ``t`` (``"#commit"``, ...) or ``"error"`` for an
    error frame (op -1), whose ``body`` has ``error`` and ``message``. ``seq`` and ``time`` are the body's,
    where it has them (``#info`` and error frames have neither)."""

    kind: str
    body: Mapping[str, Any]
    seq: int | None = None
    time: datetime | None = None
    size: int = 0

    @property
    def is_error(self) -> bool:
        return self.kind == "error"

    @property
    def error_name(self) -> str:
        """An error frame's ``error`` (``FutureCursor``, ``ConsumerTooSlow``), an ``#info`` frame's ``name``
        (``OutdatedCursor``); empty otherwise."""
        value = self.body.get("error" if self.is_error else "name", "")
        return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class ImageBlob:
    """An image a post embeds: the blob's CID (as text) and what the record says of it."""

    cid: str
    mime_type: str = ""
    size: int | None = None


@dataclass(frozen=True)
class ImagePost:
    """A newly created post with images. ``uri`` is the canonical location ``at://<did>/app.bsky.feed.post/<rkey>``."""

    did: str
    rkey: str
    cid: str
    images: tuple[ImageBlob, ...] = field(default_factory=tuple)
    created_at: datetime | None = None

    @property
    def uri(self) -> str:
        return f"at://{self.did}/{POST_COLLECTION}/{self.rkey}"


def frame_decode(data: bytes) -> Frame:
    """The frame in ``data`` (one websocket message). Raises :class:`FrameError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FrameError("a firehose frame is a binary websocket message; this one was text")
    data = bytes(data)
    try:
        parts = libipld.decode_dag_cbor_multi(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise FrameError(f"the frame ({len(data)} bytes) is not DAG-CBOR: {_short(exc)}") from None
    if len(parts) != 2:
        raise FrameError(f"a frame is a header and a body (two DAG-CBOR objects); this one has {len(parts)}")
    header, body = parts
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise FrameError("a frame's header and body must both be maps")
    op = header.get("op")
    if op == -1:
        return Frame(kind="error", body=body, size=len(data))
    if op != 1:
        raise FrameError(f"unknown frame op {op!r}: 1 is a message and -1 an error")
    kind = header.get("t")
    if not isinstance(kind, str) or not kind:
        raise FrameError("a message frame's header has no type ('t')")
    seq = body.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
        raise FrameError(f"the {kind} frame's seq is not a whole number ≥ 0: {type(seq).__name__}")
    if kind in (COMMIT, IDENTITY, ACCOUNT, SYNC) and seq is None:
        raise FrameError(f"a {kind} frame must carry a seq")
    return Frame(kind=kind, body=body, seq=seq, time=parse_time(body.get("time")), size=len(data))


@dataclass(frozen=True)
class PostRef:
    """A created post whose record a commit left out of its blocks (a ``tooBig`` commit of an older relay):
    the scanner fetches the record itself."""

    did: str
    rkey: str
    cid: str


@dataclass(frozen=True)
class CommitPosts:
    posts: list[ImagePost] = field(default_factory=list)
    missing: list[PostRef] = field(default_factory=list)


def commit_image_posts(frame: Frame) -> CommitPosts:
    """The posts this ``#commit`` creates that embed images (``app.bsky.embed.images``, or
    ``app.bsky.embed.recordWithMedia`` whose media is images), and the created posts whose records it left
    out. Updates and deletes are passed over: a post cannot be edited in the app, and a deleted one is gone.
    Raises :class:`FrameError`."""
    if frame.kind != COMMIT:
        return CommitPosts()
    body = frame.body
    did = body.get("repo")
    ops = body.get("ops")
    if not isinstance(did, str) or not did.startswith("did:"):
        raise FrameError("a #commit frame's repo is not a DID")
    if not isinstance(ops, list):
        raise FrameError("a #commit frame's ops is not a list")
    creates = [op for op in ops if isinstance(op, dict) and op.get("action") == "create"
               and isinstance(op.get("path"), str) and op["path"].startswith(POST_COLLECTION + "/")]
    if not creates:
        return CommitPosts()
    blocks = _car_blocks(body.get("blocks"))
    found = CommitPosts()
    for op in creates:
        rkey = op["path"].split("/", 1)[1]
        if not rkey or "/" in rkey:
            raise FrameError(f"a post path must be {POST_COLLECTION}/<rkey>; got {op['path'][:100]!r}")
        cid = op.get("cid")
        if not isinstance(cid, bytes):
            raise FrameError(f"the create of {op['path'][:100]!r} names no record CID")
        record = blocks.get(cid)
        if record is None:
            found.missing.append(PostRef(did=did, rkey=rkey, cid=_cid_text(cid)))
            continue
        post = post_images(did=did, rkey=rkey, cid=_cid_text(cid), record=record)
        if post is not None:
            found.posts.append(post)
    return found


def post_images(*, did: str, rkey: str, cid: str, record: Any) -> ImagePost | None:
    """The post's images, from its record as DAG-CBOR decodes it (CIDs as bytes) or as JSON gives it
    (``{"$link": "..."}``); None when it embeds none."""
    if not isinstance(record, dict) or record.get("$type") != POST_COLLECTION:
        return None
    images = list(_images(record.get("embed")))[:MAX_IMAGES_PER_POST]
    if not images:
        return None
    return ImagePost(did=did, rkey=rkey, cid=cid, images=tuple(images), created_at=parse_time(record.get("createdAt")))


def _images(embed: Any) -> Iterator[ImageBlob]:
    if not isinstance(embed, dict):
        return
    kind = embed.get("$type")
    if kind == EMBED_RECORD_WITH_MEDIA:
        yield from _images(embed.get("media"))
        return
    if kind != EMBED_IMAGES or not isinstance(embed.get("images"), list):
        return
    for image in embed["images"]:
        blob = _blob(image.get("image") if isinstance(image, dict) else None)
        if blob is not None:
            yield blob


def _blob(value: Any) -> ImageBlob | None:
    """A blob reference: ``{"$type": "blob", "ref": <cid>, "mimeType", "size"}``, or the legacy
    ``{"cid": "...", "mimeType"}``. Anything else (a record written by hand) is passed over."""
    if not isinstance(value, dict):
        return None
    ref = value.get("ref", value.get("cid"))
    if isinstance(ref, dict):
        ref = ref.get("$link")
    try:
        cid = _cid_text(ref) if isinstance(ref, bytes) else ref
    except FrameError:
        return None
    if not isinstance(cid, str) or not cid or len(cid) > 200 or not cid.isalnum():
        return None
    mime = value.get("mimeType")
    size = value.get("size")
    return ImageBlob(cid=cid, mime_type=mime if isinstance(mime, str) else "",
                     size=size if isinstance(size, int) and not isinstance(size, bool) else None)


def _car_blocks(data: Any) -> dict[bytes, Any]:
    if not isinstance(data, bytes):
        raise FrameError("a #commit frame's blocks is not a CAR file (bytes)")
    if not data:
        return {}
    try:
        _header, blocks = libipld.decode_car(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise FrameError(f"a #commit frame's blocks ({len(data)} bytes) are not a valid CAR file: "
                         f"{_short(exc)}") from None
    if not isinstance(blocks, dict):
        raise FrameError("a #commit frame's CAR file holds no blocks")
    return blocks


def _cid_text(cid: Any) -> str:
    try:
        text = libipld.encode_cid(cid)
    except (ValueError, TypeError) as exc:
        raise FrameError(f"not a CID: {_short(exc)}") from None
    return str(text)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
