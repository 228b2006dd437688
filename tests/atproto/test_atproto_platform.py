"""The ``atproto`` platform against the AT Protocol reference servers (a PLC directory, a PDS, the AppView and
Ozone from @atproto/dev-env): locations, fetching posts from the author's PDS, takedowns and restorations through
Ozone that the PDS and the AppView carry out, and the whole walkthrough from a report to a restored appeal."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from moderation.models import Action, AuditEvent, Report, ReportedItem, StatementOfReasons
from moderation.platforms import get_content_source, get_enforcer
from moderation.platforms.atproto import AtprotoPlatform, post_media_cids
from moderation.platforms.base import (
    ContentGone,
    ContentNotFound,
    ContentUnfetchable,
    LocationRejected,
    PlatformError,
)
from moderation.platforms.fetch import AddressNotAllowed
from moderation.selectors.reporter import report_public_status
from moderation.services.appeals import appeal_decide, appeal_submit
from tests.atproto.network import AtprotoNetwork, jpeg
from tests.conftest import notice_payload
from tests.moderation.legal_helpers import take_down
from tests.platform_server.fixtures import make_image

DID = "did:plc:abcdefghijklmnopqrstuvwx"


def picture(seed: int) -> bytes:
    return jpeg(make_image(seed, size=(480, 360)))


@pytest.fixture
def platform(settings: Any) -> AtprotoPlatform:
    settings.TAKEDOWN_ATPROTO_WEB_HOSTS = ["bsky.app", "staging.bsky.app"]
    return AtprotoPlatform.from_settings()


# --- Locations (no network) ----------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "canonical"), [
    (f"https://bsky.app/profile/{DID}/post/3k2abcdefgh2c", f"at://{DID}/app.bsky.feed.post/3k2abcdefgh2c"),
    ("https://BSKY.app/profile/@Alice.Example.COM/post/3k2abc/?ref=share#x",
     "at://alice.example.com/app.bsky.feed.post/3k2abc"),
    ("https://staging.bsky.app/profile/alice.example.com/post/3k2abc", "at://alice.example.com/app.bsky.feed.post/3k2abc"),
    (f"at://{DID}/app.bsky.feed.post/3k2abc", f"at://{DID}/app.bsky.feed.post/3k2abc"),
    ("  AT://alice.example.com/app.bsky.feed.post/3k2abc  ", "at://alice.example.com/app.bsky.feed.post/3k2abc"),
])
def test_posts_are_named_by_one_canonical_at_uri_however_they_are_linked(platform: AtprotoPlatform, given: str,
                                                                          canonical: str) -> None:
    assert platform.normalise(given) == canonical


@pytest.mark.parametrize(("given", "says"), [
    ("https://example.com/profile/alice.example.com/post/3k2abc", "not on this platform"),
    ("https://bsky.app/profile/alice.example.com", "not a link to a post"),
    ("https://bsky.app/profile/alice.example.com/lists/3k2abc", "not a link to a post"),
    ("https://bsky.app/profile/not_a_handle/post/3k2abc", "neither a handle"),
    ("https://bsky.app/profile/did:example:123/post/3k2abc", "not a DID"),
    (f"at://{DID}/app.bsky.feed.like/3k2abc", "not the at:// address of a post"),
    ("https://bsky.app/profile/alice.example.com/post/..", "record key"),
    ("ftp://bsky.app/profile/alice.example.com/post/3k2abc", "not on this platform"),
    ("bsky.app:99999/profile/x", "not a web address"),
])
def test_links_that_are_not_posts_are_refused_with_what_would_do(platform: AtprotoPlatform, given: str,
                                                                 says: str) -> None:
    with pytest.raises(LocationRejected) as refused:
        platform.normalise(given)
    assert says in str(refused.value)
    assert "bsky.app/profile/name.bsky.social/post/" in str(refused.value)  # says what a good link looks like


def test_a_posts_images_video_and_quoted_media_are_found_each_once() -> None:
    def blob(cid: str) -> dict[str, Any]:
        return {"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/jpeg", "size": 10}

    images = {"$type": "app.bsky.embed.images", "images": [{"image": blob("bafkreiaaaaaaaa")},
                                                           {"image": blob("bafkreibbbbbbbb")},
                                                           {"image": blob("bafkreiaaaaaaaa")}]}
    assert post_media_cids({"embed": images}) == ["bafkreiaaaaaaaa", "bafkreibbbbbbbb"]
    assert post_media_cids({"embed": {"$type": "app.bsky.embed.video", "video": blob("bafkreivvvvvvvv")}}) == [
        "bafkreivvvvvvvv"]
    assert post_media_cids({"embed": {"$type": "app.bsky.embed.recordWithMedia", "media": images}}) == [
        "bafkreiaaaaaaaa", "bafkreibbbbbbbb"]
    assert post_media_cids({"embed": {"$type": "app.bsky.embed.images",
                                      "images": [{"image": {"cid": "bafkreilegacy1", "mimeType": "image/png"}}]}}) == [
        "bafkreilegacy1"]
    assert post_media_cids({"text": "no embed"}) == []
    assert post_media_cids({"embed": {"$type": "app.bsky.embed.external", "external": {}}}) == []
    assert post_media_cids({"embed": {"$type": "app.bsky.embed.images", "images": [{"image": {"ref": "x"}}]}}) == []


def test_the_settings_check_names_what_is_missing_for_ozone(settings: Any) -> None:
    from moderation.platforms.atproto import atproto_settings_check

    settings.TAKEDOWN_PLATFORM = settings.TAKEDOWN_ENFORCER = "atproto"
    settings.TAKEDOWN_ATPROTO_OZONE_URL = ""
    [error] = atproto_settings_check(None)
    assert "TAKEDOWN_ATPROTO_OZONE_URL" in error.msg
    settings.TAKEDOWN_ATPROTO_OZONE_URL = "https://ozone.example.com"
    settings.TAKEDOWN_ATPROTO_OZONE_DID = "ozone"
    [error] = atproto_settings_check(None)
    assert "TAKEDOWN_ATPROTO_OZONE_DID" in error.msg
    settings.TAKEDOWN_ATPROTO_OZONE_DID = DID
    settings.TAKEDOWN_ATPROTO_OZONE_ADMIN_PASSWORD = "pw"
    assert atproto_settings_check(None) == []


@pytest.mark.django_db
def test_a_directory_that_does_not_answer_makes_the_platform_unavailable_not_the_content_missing(
        settings: Any) -> None:
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.TAKEDOWN_ATPROTO_PLC_URL = f"http://127.0.0.1:{port}"
    settings.TAKEDOWN_FETCH_ALLOW_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    settings.TAKEDOWN_FETCH_ATTEMPTS = 1
    with pytest.raises(PlatformError):
        AtprotoPlatform.from_settings().fetch(f"at://{DID}/app.bsky.feed.post/3k2abc")


# --- Fetching from the reference PDS ---------------------------------------------------------------------

@pytest.mark.atproto
@pytest.mark.django_db
def test_a_reported_post_is_fetched_from_the_authors_pds_with_each_image(atproto_settings: AtprotoNetwork) -> None:
    alice = atproto_settings.create_account()
    images = [picture(1), picture(2)]
    post = alice.post("two pictures", images)
    atproto_settings.sync()  # the AppView, which resolves handles, has seen the new account

    fetched = get_content_source().fetch(post.web_url())  # by handle, as people copy links
    try:
        assert [one.location for one in fetched] == [post.uri, post.uri]  # the DID form, which never changes
        assert [hashlib.sha256(one.path.read_bytes()).hexdigest() for one in fetched] == [
            hashlib.sha256(data).hexdigest() for data in images]
        assert {one.content_type for one in fetched} == {"image/jpeg"}
        assert fetched[0].uploader == f"{alice.did} @{alice.handle}"
        assert fetched[0].posted_at is not None
        assert fetched[0].source_url.endswith("/xrpc/com.atproto.sync.getBlob")  # no query string kept
    finally:
        for one in fetched:
            one.discard()


@pytest.mark.atproto
@pytest.mark.django_db
def test_a_video_post_is_fetched_as_its_video(atproto_settings: AtprotoNetwork) -> None:
    from tests.hashing.videos import make_video

    video = make_video(2, seed=3)
    post = atproto_settings.create_account().post_video("a generated video", video)
    [fetched] = get_content_source().fetch(post.uri)
    try:
        assert fetched.content_type == "video/mp4"
        assert fetched.path.read_bytes() == video
    finally:
        fetched.discard()


@pytest.mark.atproto
@pytest.mark.django_db
def test_posts_without_media_missing_posts_and_unknown_handles_say_why(atproto_settings: AtprotoNetwork) -> None:
    alice = atproto_settings.create_account()
    text_only = alice.post("just words")
    atproto_settings.sync()
    source = get_content_source()
    with pytest.raises(ContentUnfetchable, match="no images or video"):
        source.fetch(text_only.uri)
    with pytest.raises(ContentNotFound):
        source.fetch(f"at://{alice.did}/app.bsky.feed.post/3zzzzzzzzzz2a")
    with pytest.raises((ContentNotFound, ContentUnfetchable)) as unknown:
        source.fetch("at://nobody-here.test/app.bsky.feed.post/3zzzzzzzzzz2a")
    assert "nobody-here.test" in str(unknown.value)


@pytest.mark.atproto
@pytest.mark.django_db
def test_a_pds_outside_the_allowed_hosts_is_not_fetched_from(atproto_settings: AtprotoNetwork, settings: Any) -> None:
    alice = atproto_settings.create_account()
    post = alice.post("a picture", [picture(3)])
    settings.TAKEDOWN_ATPROTO_PDS_HOSTS = ["pds.example.com"]
    with pytest.raises(ContentUnfetchable, match="TAKEDOWN_ATPROTO_PDS_HOSTS"):
        get_content_source().fetch(post.uri)


@pytest.mark.atproto
@pytest.mark.django_db
def test_a_private_ozone_is_reachable_without_opening_private_networks_to_reported_content(
        atproto_settings: AtprotoNetwork, settings: Any) -> None:
    network = atproto_settings
    post = network.create_account().post("a picture", [picture(7)])
    network.sync()
    # The services run on loopback: allowed for the operator's own services only.
    settings.TAKEDOWN_FETCH_ALLOW_NETWORKS = []
    settings.TAKEDOWN_ATPROTO_SERVICE_NETWORKS = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    platform = AtprotoPlatform.from_settings()

    assert platform.ozone_status(post.uri) is None  # Ozone answers (it has no status for this post yet)
    with pytest.raises(AddressNotAllowed):  # the author's PDS, named by the network, is on a private address
        platform.fetch(post.uri)


# --- Enforcing through Ozone ---------------------------------------------------------------------------

@pytest.mark.atproto
@pytest.mark.django_db
def test_a_takedown_through_ozone_stops_the_pds_and_the_appview_and_a_restoration_undoes_it(
        atproto_settings: AtprotoNetwork) -> None:
    network = atproto_settings
    alice = network.create_account()
    post = alice.post("a picture", [picture(4), picture(5)])
    network.sync()
    assert network.appview_posts(post.uri) and network.blob_status(alice.did, post.blob_cids[0]) == 200
    enforcer = get_enforcer()

    enforcer.remove(location=post.uri, reason="ncii", idempotency_key="decision-1-item-1-remove",
                    statement={"decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT", "reporter_email": "x@y.z"})
    enforcer.remove(location=post.uri, reason="ncii", idempotency_key="decision-1-item-1-remove")  # a retry
    network.sync()

    assert [network.blob_status(alice.did, cid) for cid in post.blob_cids] == [400, 400]
    assert network.appview_posts(post.uri) == []
    takedowns = [e for e in network.ozone_events(post.uri) if e["event"]["$type"].endswith("#modEventTakedown")]
    assert len(takedowns) == 1  # the retry changed nothing
    comment = takedowns[0]["event"]["comment"]
    assert "ncii" in comment and "DECISION_GROUND_ILLEGAL_CONTENT" in comment
    assert "x@y.z" not in comment  # only the statement's non-personal fields are sent
    assert sorted(takedowns[0]["subjectBlobCids"]) == sorted(post.blob_cids)
    with pytest.raises(ContentGone):
        get_content_source().fetch(post.uri)

    enforcer.restore(location=post.uri, reason="appeal upheld", idempotency_key="appeal-1-restore")
    enforcer.restore(location=post.uri, reason="appeal upheld", idempotency_key="appeal-1-restore")
    network.sync()
    assert [network.blob_status(alice.did, cid) for cid in post.blob_cids] == [200, 200]
    assert [p["uri"] for p in network.appview_posts(post.uri)] == [post.uri]
    reversals = [e for e in network.ozone_events(post.uri) if e["event"]["$type"].endswith("#modEventReverseTakedown")]
    assert len(reversals) == 1


# --- The walkthrough -----------------------------------------------------------------------------------

@pytest.mark.atproto
@pytest.mark.django_db(transaction=True)
def test_a_bluesky_link_reported_to_takedown_is_taken_down_on_the_network_and_restored_on_appeal(
        atproto_settings: AtprotoNetwork, api: APIClient, moderator: User, senior: User) -> None:
    network = atproto_settings
    alice = network.create_account()
    post = alice.post("a generated picture", [picture(6)])
    network.sync()

    response = api.post("/api/v1/reports", notice_payload(locations=[post.web_url()]), format="json")
    assert response.status_code == 201, response.content
    report = Report.objects.get(case_number=response.json()["case_number"])
    item = report.items.get()
    assert item.state == ReportedItem.State.RESOLVED, item.error
    assert item.location == post.uri  # the handle was resolved; the case keeps the DID form
    assert item.uploader_ref == f"{alice.did} @{alice.handle}"
    assert item.media is not None and item.media.hashes.filter(algorithm="pdq").exists()

    decision = take_down(report, moderator)
    action = Action.objects.get(decision=decision)
    assert action.status == Action.Status.DONE, action.last_error
    network.sync()
    assert network.blob_status(alice.did, post.blob_cids[0]) != 200
    assert network.appview_posts(post.uri) == []
    report.refresh_from_db()
    assert report.status == Report.Status.REMOVED
    assert report_public_status(report)["items"][0]["state"] == "removed"
    assert AuditEvent.objects.filter(action="action.done", object_id=action.pk).exists()

    # The uploader appeals; a senior reverses the decision; the post comes back on the network.
    statement = StatementOfReasons.objects.get(decision=decision)
    appeal = appeal_submit(statement=statement, email="uploader@example.test", text="This is my own picture.")
    appeal_decide(appeal_id=appeal.pk, user=senior, reverse_decision=True, note="Not the reporter's picture.")
    restore = Action.objects.get(decision=decision, kind=Action.Kind.RESTORE)
    assert restore.status == Action.Status.DONE, restore.last_error
    network.sync()
    assert network.blob_status(alice.did, post.blob_cids[0]) == 200
    assert [p["uri"] for p in network.appview_posts(post.uri)] == [post.uri]
