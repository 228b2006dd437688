"""Proactive scanning: the firehose scanner (``manage.py atproto_scan``; docs/platforms.md "Proactive scanning").

It reads an AT Protocol repository event stream (``com.atproto.sync.subscribeRepos``, a PDS's or a relay's), finds
each newly created post with images (``services/atproto_firehose.py``), downloads every image from the author's
PDS through the one safe fetcher, hashes it and matches it against the banks, and hands a post that matched to
``services/automation.py``, which opens a case or takes it down as the banks' policy says.

Promises:

- **Nothing skipped.** The cursor (``StreamCursor`` ``firehose:<host>``) holds the seq of the last event fully
  processed; it is saved after the event's work committed (at most every ``TAKEDOWN_ATPROTO_SCAN_CURSOR_SAVE_SECONDS``),
  and the scanner always reconnects from it, after a dropped connection as after a restart or a SIGKILL.
- **Nothing done twice.** Events after the saved cursor are processed again after a crash; a post already handled
  is recognised by its ``ScannerFinding`` rows (unique per post and image, a database constraint) and nothing
  is opened again.
- **Backpressure, never drops.** Events are processed one at a time, in order, on this thread. While one is being
  processed, the websocket client's bounded queue (``QUEUE_FRAMES`` messages) fills and it stops reading the
  socket, so TCP holds the rest back at the server. A server that gives up on a slow consumer
  (``ConsumerTooSlow``) is reconnected to from the cursor. An image whose PDS is unavailable is retried
  (``TAKEDOWN_ATPROTO_SCAN_BLOB_ROUNDS``) while the stream waits.
- **Errors.** A frame that cannot be read is logged (its size and the reason, never its bytes) and counted; the
  stream goes on. An error frame or a dropped connection reconnects with backoff from the cursor; ``#info``
  ``OutdatedCursor`` (the server no longer has the events after our cursor) is logged and counted, and scanning
  goes on from the server's oldest event; ``FutureCursor`` (our cursor is ahead of the server: another server, or
  one that was reset) stops the scanner with :class:`CursorAhead`, since guessing could skip events.
  ``#identity`` and ``#account`` events need nothing from the scanner: they are counted and passed. So is
  ``#sync`` (a repository's state declared afresh): posts that reached a repository without a ``#commit`` the
  scanner saw are not looked for there (not in this version).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections
from django.utils import timezone
from PIL import Image
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from hashing.algorithms import hash_bytes
from hashing.errors import MediaError
from hashing.matching import match_hashes
from moderation.models import Media, ScannerFinding, StreamCursor
from moderation.observability import scanner as metrics
from moderation.platforms import (
    ContentNotFound,
    ContentUnfetchable,
    PlatformError,
    PlatformRefused,
)
from moderation.platforms.fetch import FetchPolicy, SafeFetcher
from moderation.services import pipeline
from moderation.services.atproto_firehose import (
    COMMIT,
    INFO,
    POST_COLLECTION,
    Frame,
    FrameError,
    ImageBlob,
    ImagePost,
    PostRef,
    commit_image_posts,
    frame_decode,
    post_images,
)
from moderation.services.automation import FindingOutcome, FoundImage, scanner_finding_act
from moderation.services.media import media_store

logger = logging.getLogger(__name__)

# Largest websocket message accepted: a commit carries at most a few MB of blocks (the PDS caps a commit's CAR at
# 2 MB in the sync 1.1 rules); 16 MiB leaves room for older servers without letting one frame exhaust memory.
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Messages the websocket client holds while the scanner is busy; then it stops reading and TCP pushes back.
QUEUE_FRAMES = 64
# How long one wait for a message lasts before the scanner looks at its stop flag and saves the cursor.
RECV_POLL_SECONDS = 0.5
# A DID's PDS is looked up again after this long (accounts move between PDSes, rarely); at most this many kept.
PDS_CACHE_SECONDS = 3600.0
PDS_CACHE_MAX = 100_000
RECONNECT_FIRST_SECONDS = 1.0
# Largest image downloaded: the app.bsky.embed.images lexicon caps an image blob at 1,000,000 bytes; 5 MiB leaves
# room for other clients while no post can make the scanner hold a video-sized file in memory.
IMAGE_MAX_BYTES = 5 * 1024 * 1024
LAGS_KEPT = 100_000  # ScanStats.lags: enough for a benchmark's percentiles, bounded for a process that runs for weeks


class CursorAhead(Exception):
    """The server says our cursor is in its future (``FutureCursor``): it is another server, or was reset. The
    message says how to go on."""


class _Interrupted(Exception):
    """Stop was asked for in the middle of an event: the event is not done, and the cursor stays before it."""


class _StreamError(Exception):
    """The server sent an error frame other than FutureCursor (it closes the connection after one)."""


@dataclass
class ScanStats:
    """What one run of the scanner did (the command prints it when it stops)."""

    events: int = 0
    commits: int = 0
    image_posts: int = 0
    images: int = 0
    matches: int = 0
    takedowns: int = 0
    already_handled: int = 0
    frame_errors: int = 0
    connections: int = 0
    started_from: int | None = None
    last_seq: int | None = None
    max_lag_seconds: float = 0.0
    # The lag of the most recent events (seconds from the event's time to the end of its processing).
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=LAGS_KEPT), repr=False)
    outcomes: deque[FindingOutcome] = field(default_factory=lambda: deque(maxlen=1000), repr=False)


def firehose_name(url: str) -> str:
    """The cursor's name for a stream: ``firehose:<host[:port]>``."""
    return f"firehose:{urlsplit(url).netloc.lower()}"


def firehose_url_checked(url: str) -> str:
    """The stream URL, or ``ImproperlyConfigured`` saying what a usable one looks like."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ImproperlyConfigured(
            f"TAKEDOWN_ATPROTO_FIREHOSE_URL must be a ws:// or wss:// URL of a repository event stream, e.g. "
            f"wss://pds.example/xrpc/com.atproto.sync.subscribeRepos; got {url!r}.")
    path = parts.path.rstrip("/")
    if not path.endswith("/xrpc/com.atproto.sync.subscribeRepos"):
        path = f"{path}/xrpc/com.atproto.sync.subscribeRepos"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class BlobSource:
    """Downloads image blobs (``com.atproto.sync.getBlob``) from the author's PDS, through the safe fetcher.

    ``pds_of(did)`` names the PDS (by default the ``atproto`` platform's own lookup of the DID document); answers
    are kept for ``PDS_CACHE_SECONDS``.
    """

    def __init__(self, pds_of: Callable[[str], str] | None = None) -> None:
        self._pds_of = pds_of or _platform_pds_of()
        self._pds: dict[str, tuple[str, float]] = {}
        self._fetchers: dict[str, SafeFetcher] = {}

    def pds(self, did: str) -> str:
        known = self._pds.get(did)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        url = self._pds_of(did).rstrip("/")
        if len(self._pds) >= PDS_CACHE_MAX:
            self._pds.clear()
        self._pds[did] = (url, time.monotonic() + PDS_CACHE_SECONDS)
        return url

    def fetcher(self, url: str) -> SafeFetcher:
        host = urlsplit(url).hostname or ""
        if host not in self._fetchers:
            policy = FetchPolicy.from_settings([host])
            policy = dataclasses.replace(policy, max_bytes=min(policy.max_bytes, IMAGE_MAX_BYTES))
            self._fetchers[host] = SafeFetcher(policy, purpose="atproto firehose scanner")
        return self._fetchers[host]

    def download(self, *, did: str, cid: str, location: str) -> bytes:
        """The blob's bytes. ContentNotFound/ContentGone, ContentUnfetchable, PlatformError or PlatformRefused."""
        pds = self.pds(did)
        url = f"{pds}/xrpc/com.atproto.sync.getBlob?{urlencode({'did': did, 'cid': cid})}"
        fetched = self.fetcher(pds).download(url, location=location, uploader=did)
        try:
            with fetched.open() as handle:
                return handle.read()
        finally:
            fetched.discard()

    def record(self, ref: PostRef) -> Any:
        """A post record as the PDS gives it (``com.atproto.repo.getRecord``), for commits that left it out."""
        pds = self.pds(ref.did)
        query = urlencode({"repo": ref.did, "collection": POST_COLLECTION, "rkey": ref.rkey})
        return self.fetcher(pds).call_json("GET", f"{pds}/xrpc/com.atproto.repo.getRecord?{query}")


def _warm_up() -> None:
    """Compile the hashing kernels and load the match index before the first event, so that its lag does not
    carry a one-off second or two (numba compiles PDQ's kernels on first use)."""
    picture = io.BytesIO()
    Image.linear_gradient("L").resize((64, 64)).convert("RGB").save(picture, format="PNG")
    match_hashes(hash_bytes(picture.getvalue()).values())


def _platform_pds_of() -> Callable[[str], str]:
    # The atproto platform adapter knows how to read DID documents (PLC directory, did:web) under the operator's
    # TAKEDOWN_ATPROTO_PDS_HOSTS; it is built on first use so that a scanner given its own lookup needs none of it.
    platform: list[Any] = []

    def pds_of(did: str) -> str:
        if not platform:
            from moderation.platforms.atproto import AtprotoPlatform

            platform.append(AtprotoPlatform.from_settings())
        return str(platform[0].pds_of(did))

    return pds_of


class FirehoseScanner:
    """Scans one stream; see the module docstring. ``run`` returns when ``stop`` is set (or ``stop_when`` says so)."""

    def __init__(self, *, url: str, blobs: BlobSource | None = None, cursor_save_seconds: float | None = None,
                 reconnect_max_seconds: float | None = None, blob_rounds: int | None = None) -> None:
        self.url = firehose_url_checked(url)
        self.name = firehose_name(self.url)
        self.blobs = blobs or BlobSource()
        self.cursor_save_seconds = float(settings.TAKEDOWN_ATPROTO_SCAN_CURSOR_SAVE_SECONDS
                                         if cursor_save_seconds is None else cursor_save_seconds)
        self.reconnect_max_seconds = float(settings.TAKEDOWN_ATPROTO_SCAN_RECONNECT_MAX_SECONDS
                                           if reconnect_max_seconds is None else reconnect_max_seconds)
        self.blob_rounds = int(settings.TAKEDOWN_ATPROTO_SCAN_BLOB_ROUNDS if blob_rounds is None else blob_rounds)
        self.stats = ScanStats()
        self._stop = threading.Event()
        self._processed: int | None = None  # seq of the last event fully processed (saved or not)
        self._saved: int | None = None
        self._saved_at = float("-inf")  # the first progress is saved at once, then at most every cursor_save_seconds

    # --- the cursor ---

    def cursor(self) -> int | None:
        """The saved cursor, or None when this stream was never scanned."""
        value = StreamCursor.objects.filter(name=self.name).values_list("value", flat=True).first()
        return int(value) if value and value.isdecimal() else None

    def cursor_set(self, seq: int | None) -> None:
        """Save ``seq`` as the cursor (None: forget it; the next run starts at the live end of the stream)."""
        if seq is None:
            StreamCursor.objects.filter(name=self.name).delete()
        else:
            StreamCursor.objects.update_or_create(name=self.name, defaults={"value": str(seq)})
        self._saved = seq
        self._saved_at = time.monotonic()

    def _save_cursor(self, *, force: bool = False) -> None:
        if self._processed is None or self._processed == self._saved:
            return
        if force or time.monotonic() - self._saved_at >= self.cursor_save_seconds:
            self.cursor_set(self._processed)
            close_old_connections()  # a long-running process: replace a connection past its age or broken

    # --- running ---

    def stop(self) -> None:
        """Ask ``run`` to return after the event in hand (from a signal handler or another thread)."""
        self._stop.set()

    def run(self, *, start: int | None = None, stop_when: Callable[[ScanStats], bool] | None = None,
            idle_seconds: float | None = None) -> ScanStats:
        """Scan until stopped. ``start`` overrides the saved cursor for this run (0: from the oldest event the
        server keeps); with neither, the scan starts at the live end. ``stop_when`` is asked after each event
        and each quiet poll; ``idle_seconds``: return after this long without a message (benchmarks, tests)."""
        self._processed = self.cursor() if start is None else start
        self._saved = self._processed if start is None else None
        self.stats.started_from = self._processed
        _warm_up()
        backoff = RECONNECT_FIRST_SECONDS
        try:
            while not self._stop.is_set():
                try:
                    if self._connection(stop_when, idle_seconds):
                        backoff = RECONNECT_FIRST_SECONDS
                    if self._stop.is_set():
                        break
                    reason = "the server closed the stream"
                except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError, _StreamError) as exc:
                    reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
                except _Interrupted:
                    break
                except CursorAhead:
                    raise
                except Exception as exc:  # processing failed (database down, a bug): the event is retried
                    logger.exception("firehose %s: processing the event after seq %s failed; retrying it after "
                                     "reconnecting", self.name, self._processed)
                    reason = f"processing failed ({type(exc).__name__})"
                    metrics.error("event")
                else:
                    if idle_seconds is not None:
                        break  # the stream went quiet: the caller asked to return then
                metrics.error("stream")
                self._save_cursor(force=True)
                delay = backoff * (0.5 + random.random() / 2)
                logger.warning("firehose %s: %s; reconnecting from cursor %s in %.1f s", self.name, reason,
                               self._processed, delay)
                if self._stop.wait(delay):
                    break
                backoff = min(backoff * 2, self.reconnect_max_seconds)
        finally:
            self._save_cursor(force=True)
        return self.stats

    def _connection(self, stop_when: Callable[[ScanStats], bool] | None, idle_seconds: float | None) -> bool:
        """One connection, until it ends, stop, ``stop_when`` or idleness. True when an event was processed."""
        url = self.url if self._processed is None else f"{self.url}?{urlencode({'cursor': self._processed})}"
        progressed = False
        with connect(url, max_size=MAX_FRAME_BYTES, max_queue=QUEUE_FRAMES, open_timeout=10, close_timeout=2,
                     ping_interval=None, user_agent_header="Takedown firehose scanner") as socket:
            self.stats.connections += 1
            logger.info("firehose %s: connected, from %s", self.name,
                        f"cursor {self._processed}" if self._processed is not None else "the live end")
            quiet_since = time.monotonic()
            while not self._stop.is_set():
                try:
                    message = socket.recv(timeout=RECV_POLL_SECONDS)
                except TimeoutError:
                    self._save_cursor()
                    if stop_when is not None and stop_when(self.stats):
                        self._stop.set()
                    elif idle_seconds is not None and time.monotonic() - quiet_since >= idle_seconds:
                        return progressed
                    continue
                quiet_since = time.monotonic()
                if self.handle(message):
                    progressed = True
                self._save_cursor()
                if stop_when is not None and stop_when(self.stats):
                    self._stop.set()
        return progressed

    # --- one message ---

    def handle(self, message: bytes | str) -> bool:
        """Process one websocket message. True when it was an event with a seq, now fully processed."""
        try:
            frame = frame_decode(message if isinstance(message, bytes) else message.encode())
        except FrameError as exc:
            self.stats.frame_errors += 1
            metrics.error("frame")
            logger.warning("firehose %s: a frame of %d bytes was passed over: %s", self.name, len(message), exc)
            return False
        if frame.is_error:
            if frame.error_name == "FutureCursor":
                raise CursorAhead(
                    f"{self.name}: the server says cursor {self._processed} is in its future, so it is another "
                    "server or one that was reset. Check TAKEDOWN_ATPROTO_FIREHOSE_URL; to start again at the live "
                    "end run `manage.py atproto_scan --reset-cursor` (events before then are not scanned).")
            raise _StreamError(f"the server sent error {frame.error_name or '(unnamed)'}: "
                               f"{str(frame.body.get('message', ''))[:200]}")
        if frame.kind == INFO:
            if frame.error_name == "OutdatedCursor":
                metrics.error("outdated_cursor")
                logger.warning("firehose %s: the server no longer keeps the events after cursor %s; scanning goes "
                               "on from its oldest, and posts in between were not scanned", self.name, self._processed)
            return False
        if frame.kind == COMMIT:
            self._commit(frame)
        self.stats.events += 1
        lag = (timezone.now() - frame.time).total_seconds() if frame.time else None
        if lag is not None:
            self.stats.max_lag_seconds = max(self.stats.max_lag_seconds, lag)
            self.stats.lags.append(lag)
        metrics.event_processed(kind=frame.kind, seq=frame.seq, lag_seconds=lag)
        if frame.seq is None:
            return False
        self._processed = frame.seq
        self.stats.last_seq = frame.seq
        return True

    def _commit(self, frame: Frame) -> None:
        self.stats.commits += 1
        try:
            found = commit_image_posts(frame)
        except FrameError as exc:
            self.stats.frame_errors += 1
            metrics.error("frame")
            logger.warning("firehose %s: commit seq %s passed over: %s", self.name, frame.seq, exc)
            return
        posts = list(found.posts)
        for ref in found.missing:
            post = self._record(ref)
            if post is not None:
                posts.append(post)
        for post in posts:
            self._post(post, frame)

    def _record(self, ref: PostRef) -> ImagePost | None:
        try:
            answer = self._retrying(lambda: self.blobs.record(ref), what=f"the record of at://{ref.did}/"
                                    f"{POST_COLLECTION}/{ref.rkey}")
        except (ContentNotFound, ContentUnfetchable, PlatformRefused, PlatformError):
            return None
        value = answer.get("value") if isinstance(answer, dict) else None
        return post_images(did=ref.did, rkey=ref.rkey, cid=ref.cid, record=value)

    def _post(self, post: ImagePost, frame: Frame) -> None:
        self.stats.image_posts += 1
        seen = set(ScannerFinding.objects.filter(uri=post.uri).values_list("blob_cid", flat=True))
        if seen:  # handled before this event was replayed: nothing to fetch again
            self.stats.already_handled += 1
            return
        found: list[FoundImage] = []
        for part, blob in enumerate(post.images):
            image = self._image(post, blob, part)
            if image is not None:
                found.append(image)
        if not found:
            return
        outcome = scanner_finding_act(uri=post.uri, uploader=post.did, posted_at=post.created_at, images=found,
                                      seq=frame.seq, event_time=frame.time)
        if not outcome.created:
            self.stats.already_handled += 1
            return
        self.stats.matches += 1
        self.stats.takedowns += int(outcome.decision_id is not None)
        self.stats.outcomes.append(outcome)
        metrics.matched(outcome.policy)
        logger.info("firehose %s: %s matched (seq %s): %s, report %s", self.name, post.uri, frame.seq,
                    outcome.policy, outcome.report_id)

    def _image(self, post: ImagePost, blob: ImageBlob, part: int) -> FoundImage | None:
        """Fetch, hash and match one image; a ``FoundImage`` when it matched a bank (its media then stored)."""
        if blob.mime_type and not blob.mime_type.startswith("image/"):
            return None
        try:
            data = self._retrying(lambda: self.blobs.download(did=post.did, cid=blob.cid, location=post.uri),
                                  what=f"image {blob.cid} of {post.uri}")
        except ContentNotFound:
            metrics.image("gone")  # deleted (or taken down) before we got to it
            return None
        except (ContentUnfetchable, PlatformRefused) as exc:
            metrics.image("unfetchable")
            logger.info("firehose %s: image %s of %s not fetched: %s", self.name, blob.cid, post.uri, exc)
            return None
        except PlatformError:
            metrics.image("unavailable")
            metrics.error("event")
            logger.error("firehose %s: image %s of %s passed over: its PDS stayed unavailable through %d rounds",
                         self.name, blob.cid, post.uri, self.blob_rounds)
            return None
        self.stats.images += 1
        try:
            hashes = hash_bytes(data)
        except MediaError as exc:
            metrics.image("unreadable")
            logger.info("firehose %s: image %s of %s cannot be hashed: %s", self.name, blob.cid, post.uri, exc)
            return None
        metrics.image("hashed")
        matches = match_hashes(hashes.values())
        if not matches:
            return None
        try:
            media = media_store(data=data, origin=Media.Origin.PLATFORM)
        except MediaError as exc:
            logger.info("firehose %s: image %s of %s matched but cannot be stored: %s", self.name, blob.cid,
                        post.uri, exc)
            return None
        pipeline.media_hash_and_match(media.pk)  # its hashes and matches, as reported media get them
        return FoundImage(blob_cid=blob.cid, part=part, media_id=media.pk, content_type=media.mime,
                          size=media.size_bytes, matches=matches)

    def _retrying(self, call: Callable[[], Any], *, what: str) -> Any:
        """``call()``, retried in rounds while it raises PlatformError (the stream waits: backpressure)."""
        delay = RECONNECT_FIRST_SECONDS
        for attempt in range(1, self.blob_rounds + 1):
            try:
                return call()
            except PlatformError as exc:
                if attempt == self.blob_rounds:
                    raise
                logger.warning("firehose %s: %s: %s; trying again in %.0f s", self.name, what, exc, delay)
                if self._stop.wait(delay):
                    raise _Interrupted from None
                delay = min(delay * 2, self.reconnect_max_seconds)
        raise AssertionError("unreachable")
