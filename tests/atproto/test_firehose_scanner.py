"""The firehose scanner against the AT Protocol reference servers: a re-posted banked picture, re-encoded, is caught
from the PDS's event stream within seconds and, under a takedown-policy bank, taken down through Ozone with no human
step; under a case-policy bank it opens a case; the same post processed twice opens nothing twice.

The pictures are generated (tests.platform_server.fixtures.make_image), never intimate imagery. Their seeds are
this module's own, so other tests' posts on the shared network never match these banks.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import libipld
import pytest
from django.contrib.auth.models import Group, User
from django.db import IntegrityError, connection, transaction
from websockets.sync.client import connect

from hashing.algorithms import hash_bytes
from hashing.banks import bank_add_entries, bank_configure, bank_get_or_create
from hashing.models import Bank
from moderation.models import (
    Action,
    AuditEvent,
    Decision,
    Match,
    Report,
    ReportedItem,
    ReviewTask,
    ScannerFinding,
    StatementOfReasons,
    StreamCursor,
)
from moderation.roles import SENIOR
from moderation.services import atproto_scan
from moderation.services.atproto_scan import FirehoseScanner, firehose_name
from moderation.services.decisions import FourEyesRequired, decision_make, decision_submit, proposal_confirm
from tests.atproto.network import AtprotoNetwork, jpeg
from tests.platform_server.fixtures import make_image

pytestmark = [pytest.mark.atproto, pytest.mark.django_db(transaction=True)]

SIZE = (480, 360)


def picture(seed: int, *, quality: int = 90, size: tuple[int, int] = SIZE) -> bytes:
    return jpeg(make_image(seed, size=SIZE).resize(size), quality=quality)


def reencoded(seed: int) -> bytes:
    """The same picture saved again smaller and at a lower JPEG quality: other bytes, nearly the same PDQ."""
    return picture(seed, quality=55, size=(400, 300))


def stream_url(network: AtprotoNetwork) -> str:
    return network.pds.replace("http://", "ws://", 1) + "/xrpc/com.atproto.sync.subscribeRepos"


def head_seq(network: AtprotoNetwork) -> int:
    """The seq of the newest event on the PDS's stream now (read from its start until it goes quiet)."""
    last = 0
    with connect(f"{stream_url(network)}?cursor=0", max_size=None) as socket:
        while True:
            try:
                message = socket.recv(timeout=1.0)
            except TimeoutError:
                return last
            _header, body = libipld.decode_dag_cbor_multi(message)
            last = body.get("seq", last)


def banked(name: str, seeds: list[int], policy: str) -> Bank:
    bank = bank_get_or_create(name=name, description="generated test pictures")
    bank_configure(bank=bank, on_stream_match=policy)
    bank_add_entries(bank=bank, hashes=[("pdq", hash_bytes(picture(seed)).pdq) for seed in seeds], source="test")
    return bank


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def firehose(atproto_settings: AtprotoNetwork, settings: Any) -> AtprotoNetwork:
    settings.TAKEDOWN_ATPROTO_FIREHOSE_URL = stream_url(atproto_settings)
    settings.TAKEDOWN_ATPROTO_SCAN_REVIEW_SAMPLE = 1.0  # every automated takedown is sampled for review
    settings.TAKEDOWN_ATPROTO_SCAN_CURSOR_SAVE_SECONDS = 0
    return atproto_settings


@contextmanager
def running_scanner(network: AtprotoNetwork) -> Iterator[FirehoseScanner]:
    """The scanner on its own thread from the stream's present end, as `manage.py atproto_scan` runs it."""
    scanner = FirehoseScanner(url=stream_url(network))
    start = head_seq(network)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            scanner.run(start=start)
        except BaseException as exc:  # shown by the test, not lost on the thread
            failure.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="firehose-scanner", daemon=True)
    thread.start()
    try:
        yield scanner
    finally:
        scanner.stop()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the scanner did not stop"
    if failure:
        raise failure[0]


def test_a_reencoded_repost_of_a_banked_picture_is_taken_down_within_seconds_with_no_human_step(
        firehose: AtprotoNetwork, moderator: User, senior: User) -> None:
    network = firehose
    banked("confirmed-ncii-scan", [91001], Bank.OnStreamMatch.TAKEDOWN)
    reposter = network.create_account()
    repost = reencoded(91001)
    assert hashlib.sha256(repost).digest() != hashlib.sha256(picture(91001)).digest()

    with running_scanner(network) as scanner:
        posted = time.monotonic()
        post = reposter.post("found this", [repost])
        control = reposter.post("my holiday", [picture(91002)])  # matches no bank
        action = wait_for(lambda: Action.objects.filter(item__location=post.uri, status=Action.Status.DONE).first(),
                          "the scanner to take the re-post down")
        seconds = time.monotonic() - posted
        wait_for(lambda: scanner.stats.last_seq and scanner.stats.images >= 2, "the control post to be scanned")
    print(f"\nre-post to takedown: {seconds:.2f} s")
    assert seconds < 15

    # No human step: an automated decision on a case the scanner opened, carried out through Ozone.
    decision = action.decision
    assert decision.automated and decision.decided_by is None and decision.confirmed_by is None
    assert (decision.outcome, decision.reason) == (Decision.Outcome.TAKEDOWN, Decision.Reason.KNOWN_COPY)
    report = decision.report
    assert report.source == Report.Source.SCANNER
    assert report.status == Report.Status.REMOVED
    assert report.reporter_email == ""
    item = action.item
    assert item.state == ReportedItem.State.REMOVED and item.uploader_ref == reposter.did
    assert Match.objects.filter(media=item.media, bank_entry__bank__name="confirmed-ncii-scan").exists()
    finding = ScannerFinding.objects.get(uri=post.uri)
    assert (finding.blob_cid, finding.policy) == (post.blob_cids[0], "takedown")

    # The platform no longer serves it (Ozone passes the takedown on to the PDS and the AppView in the background,
    # hence the wait); the control post is untouched.
    wait_for(lambda: network.sync() or network.blob_status(reposter.did, post.blob_cids[0]) != 200,
             "the PDS to stop serving the re-posted picture", timeout=30)
    wait_for(lambda: network.sync() or network.appview_posts(post.uri) == [],
             "the AppView to stop returning the re-post", timeout=30)
    assert network.blob_status(reposter.did, control.blob_cids[0]) == 200
    assert len(network.appview_posts(control.uri)) == 1
    assert not ScannerFinding.objects.filter(uri=control.uri).exists()

    # Audited, with a statement of reasons that says automation decided, and sampled for a person's review.
    actions = set(AuditEvent.objects.filter(object_id=str(report.pk)).values_list("action", flat=True))
    assert {"report.received", "decision.automated"} <= actions
    assert AuditEvent.objects.filter(action="decision.automated", actor="scanner").exists()
    assert AuditEvent.objects.filter(action="action.done", object_id=str(action.pk)).exists()
    statement = StatementOfReasons.objects.get(decision=decision)
    assert statement.payload["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert statement.payload["source_type"] == "SOURCE_VOLUNTARY"
    task = ReviewTask.objects.get(report=report)
    assert task.state == ReviewTask.State.OPEN
    assert "automated_review" in [reason["code"] for reason in task.priority_reasons]
    # Automation never grows a bank: only a person's decision does.
    assert not Bank.objects.filter(name="confirmed-takedowns", entries__source=f"case:{report.case_number}").exists()

    # The person reviewing it afterwards cannot change it alone: an override of automation needs two seniors.
    with pytest.raises(FourEyesRequired):
        decision_make(task_id=task.pk, user=moderator, outcome="no_violation", reason="not_intimate")
    proposal = decision_submit(task_id=task.pk, user=senior, outcome="no_violation", reason="not_intimate").proposal
    assert proposal is not None and proposal.overrides_automation

    # A second senior confirms: the automated takedown is undone on the platform.
    second = User.objects.create_user(username="second-senior", password="pw-second-senior")
    second.groups.add(Group.objects.get(name=SENIOR))
    proposal_confirm(proposal_id=proposal.pk, user=second)
    restore = Action.objects.get(item=item, kind=Action.Kind.RESTORE)
    assert restore.status == Action.Status.DONE, restore.last_error
    assert restore.decision.outcome == Decision.Outcome.NO_VIOLATION and not restore.decision.automated
    wait_for(lambda: network.sync() or network.blob_status(reposter.did, post.blob_cids[0]) == 200,
             "the PDS to serve the picture again", timeout=30)
    wait_for(lambda: network.sync() or len(network.appview_posts(post.uri)) == 1,
             "the AppView to return the post again", timeout=30)
    item.refresh_from_db()
    assert item.state == ReportedItem.State.KEPT


def test_a_match_in_a_case_bank_opens_a_case_for_moderators_and_leaves_the_post_up(firehose: AtprotoNetwork) -> None:
    network = firehose
    banked("partner-suspected", [91011], Bank.OnStreamMatch.CASE)
    poster = network.create_account()

    with running_scanner(network):
        post = poster.post("again", [reencoded(91011)])
        finding = wait_for(lambda: ScannerFinding.objects.filter(uri=post.uri).first(), "the scanner to open a case")

    assert finding.policy == "case"
    report = finding.report
    assert report.source == Report.Source.SCANNER
    assert report.status == Report.Status.IN_REVIEW
    assert report.deadline_at is not None
    task = ReviewTask.objects.get(report=report)
    assert task.state == ReviewTask.State.OPEN
    assert "match" in [reason["code"] for reason in task.priority_reasons]
    assert not Decision.objects.filter(report=report).exists()
    assert not Action.objects.filter(item__report=report).exists()
    assert [(i.location, i.uploader_ref) for i in report.items.all()] == [(post.uri, poster.did)]
    assert AuditEvent.objects.filter(action="report.received", actor="scanner", object_id=str(report.pk)).exists()
    network.sync()
    assert network.blob_status(poster.did, post.blob_cids[0]) == 200
    assert len(network.appview_posts(post.uri)) == 1


def test_a_slow_matcher_makes_the_stream_wait_and_no_post_is_missed(firehose: AtprotoNetwork,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    network = firehose
    banked("slow-matcher", [91041, 91042], Bank.OnStreamMatch.CASE)
    real_match = atproto_scan.match_hashes

    def slow_match(hashes: Any) -> Any:
        time.sleep(0.5)  # a matcher far slower than the posts arrive
        return real_match(hashes)

    monkeypatch.setattr(atproto_scan, "match_hashes", slow_match)
    monkeypatch.setattr(atproto_scan, "QUEUE_FRAMES", 2)  # the client holds two messages, then stops reading
    poster = network.create_account()

    with running_scanner(network) as scanner:
        posts = [poster.post(f"burst {n}", [reencoded(91041 + n) if n < 2 else picture(91050 + n)])
                 for n in range(12)]
        assert scanner.stats.images < 12  # the posts arrived faster than the scanner matches
        wait_for(lambda: scanner.stats.images >= 12, "the scanner to work through the burst", timeout=60)

    assert scanner.stats.images == 12  # each image once: nothing dropped, nothing repeated
    assert [ScannerFinding.objects.filter(uri=p.uri).count() for p in posts] == [1, 1] + [0] * 10


def test_the_same_post_processed_twice_opens_one_case(firehose: AtprotoNetwork) -> None:
    network = firehose
    banked("replayed", [91021], Bank.OnStreamMatch.CASE)
    poster = network.create_account()
    start = head_seq(network)
    post = poster.post("twice", [reencoded(91021)])
    with connect(f"{stream_url(network)}?cursor={start}", max_size=None) as socket:
        frames = []
        while not frames or not any(post.rkey.encode() in frame for frame in frames):
            frames.append(socket.recv(timeout=10))
    scanner = FirehoseScanner(url=stream_url(network))

    for frame in frames + frames:  # the events as a restart after a crash would replay them
        scanner.handle(frame)

    assert ScannerFinding.objects.filter(uri=post.uri).count() == 1
    assert Report.objects.filter(items__location=post.uri).distinct().count() == 1
    assert scanner.stats.matches == 1 and scanner.stats.already_handled == 1


def test_the_database_refuses_a_second_finding_for_the_same_post_and_image(firehose: AtprotoNetwork) -> None:
    network = firehose
    banked("twice-at-once", [91031], Bank.OnStreamMatch.CASE)
    poster = network.create_account()
    with running_scanner(network):
        post = poster.post("one", [reencoded(91031)])
        finding = wait_for(lambda: ScannerFinding.objects.filter(uri=post.uri).first(), "the first finding")

    with pytest.raises(IntegrityError), transaction.atomic():
        ScannerFinding.objects.create(uri=post.uri, blob_cid=finding.blob_cid, report=finding.report,
                                      item=finding.item, policy="case")


def test_the_cursor_is_saved_under_the_streams_host_and_resumed(firehose: AtprotoNetwork) -> None:
    network = firehose
    with running_scanner(network) as scanner:
        network.create_account().post("words only")
        wait_for(lambda: scanner.stats.events >= 1, "an event")
    saved = StreamCursor.objects.get(name=firehose_name(stream_url(network)))
    assert saved.name == f"firehose:{network.pds.split('://', 1)[1]}"
    assert int(saved.value) == scanner.stats.last_seq
    assert FirehoseScanner(url=stream_url(network)).cursor() == scanner.stats.last_seq
