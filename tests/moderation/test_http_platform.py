"""The generic ``http`` platform against a loopback platform process written from docs/platforms.md alone
(tests/platform_server): the contract, its failures, and the whole walkthrough from report to removal."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from hashing.algorithms import hash_bytes
from hashing.banks import bank_add_entries, bank_get_or_create
from moderation.models import Action, AuditEvent, DetectionResult, Match, Report, ReportedItem, ReviewTask
from moderation.platforms import get_content_source
from moderation.platforms.base import ContentGone, ContentNotFound, ContentUnfetchable, PlatformError, PlatformRefused
from moderation.platforms.fetch import AddressNotAllowed, NotMedia, RedirectNotAllowed, TooLarge
from moderation.selectors.reporter import report_public_status
from moderation.services.pipeline import items_refetch_due
from moderation.tasks import items_refetch
from tests.conftest import notice_payload
from tests.moderation.legal_helpers import take_down
from tests.platform_server.fixtures import LoopbackPlatform, make_image

LIST_SETTINGS = {"TAKEDOWN_HTTP_LOCATION_HOSTS", "TAKEDOWN_HTTP_MEDIA_HOSTS", "TAKEDOWN_HTTP_KEEP_PARAMS"}


@pytest.fixture
def http_platform(loopback_platform: LoopbackPlatform, settings: Any) -> LoopbackPlatform:
    """Takedown configured with the settings docs/platforms.md asks the platform to hand over, and short limits."""
    for name, value in loopback_platform.takedown_env().items():
        if name in LIST_SETTINGS:
            setattr(settings, name, [v for v in value.split(",") if v])
        elif name == "TAKEDOWN_FETCH_ALLOW_NETWORKS":
            setattr(settings, name, [ipaddress.ip_network(value)])
        else:
            setattr(settings, name, value)
    # "localhost" is a media host by name, so that a redirect there is refused for its address (127.0.0.1), not
    # for its name; only the platform's own 127.0.0.2 is allowed.
    settings.TAKEDOWN_HTTP_MEDIA_HOSTS = [loopback_platform.host, "localhost"]
    settings.TAKEDOWN_FETCH_FIRST_BYTE_SECONDS = 2
    settings.TAKEDOWN_FETCH_TOTAL_SECONDS = 4
    settings.TAKEDOWN_FETCH_ATTEMPTS = 2
    settings.TAKEDOWN_FETCH_MAX_BYTES = 4 * 1024 * 1024
    return loopback_platform


def jpeg(seed: int) -> Image.Image:
    return make_image(seed, size=(640, 480))


# --- The adapter against the contract ------------------------------------------------------------------

@pytest.mark.django_db
def test_a_post_resolves_to_its_media_with_the_uploader_and_posting_time(http_platform: LoopbackPlatform) -> None:
    fetched = get_content_source().fetch("http://WWW.platform.test/p/1/?utm_source=x#top")
    try:
        assert [f.content_type for f in fetched] == ["image/jpeg", "image/jpeg"]
        assert all(f.location == "https://platform.test/p/1" for f in fetched)
        assert all(f.uploader == "user-1" for f in fetched)
        assert all(f.posted_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC) for f in fetched)
        assert all(f.path.stat().st_size == f.size > 0 for f in fetched)
        assert all(f.path.stat().st_mode & 0o077 == 0 for f in fetched)  # private to this user
    finally:
        for f in fetched:
            f.discard()
    [resolve] = http_platform.log()["resolve"]
    assert resolve["location"] == "https://platform.test/p/1"  # the canonical form, as the docs promise
    assert resolve["signature_verified"] is True and not resolve["problems"]


@pytest.mark.django_db
def test_a_bearer_token_is_accepted_instead_of_the_signature(tmp_path: Any, settings: Any) -> None:
    from tests.platform_server.fixtures import running_platform

    with running_platform(tmp_path / "bearer", auth="bearer") as platform:
        settings.TAKEDOWN_PLATFORM = "http"
        settings.TAKEDOWN_HTTP_RESOLVE_URL = platform.resolve_url
        settings.TAKEDOWN_HTTP_LOCATION_HOSTS = ["platform.test"]
        settings.TAKEDOWN_HTTP_MEDIA_HOSTS = [platform.host]
        settings.TAKEDOWN_FETCH_ALLOW_NETWORKS = [ipaddress.ip_network(f"{platform.host}/32")]
        settings.TAKEDOWN_HTTP_AUTH = "bearer"
        settings.TAKEDOWN_HTTP_TOKEN = platform.token
        fetched = get_content_source().fetch("https://platform.test/p/1")
        assert len(fetched) == 2
        for f in fetched:
            f.discard()
        settings.TAKEDOWN_HTTP_TOKEN = "a-wrong-token"
        with pytest.raises(PlatformRefused, match="401"):
            get_content_source().fetch("https://platform.test/p/1")


@pytest.mark.django_db
def test_a_wrong_secret_is_refused_by_the_platform_and_is_final(http_platform: LoopbackPlatform, settings: Any) -> None:
    settings.TAKEDOWN_WEBHOOK_SECRET = "whsec_" + "QW5vdGhlclNlY3JldE9mVHdlbnR5Rm91ckJ5dGVz"
    with pytest.raises(PlatformRefused, match="401"):
        get_content_source().fetch("https://platform.test/p/1")
    assert len(http_platform.log()["resolve"]) == 1  # a 401 is not retried


@pytest.mark.django_db
@pytest.mark.parametrize(("behaviour", "error", "message"), [
    ({"kind": "status", "status": 404}, ContentNotFound, None),
    ({"kind": "status", "status": 410}, ContentGone, None),
    ({"kind": "status", "status": 500}, PlatformError, None),
    ({"kind": "slow_first_byte", "seconds": 3}, PlatformError, None),
    ({"kind": "not_json"}, PlatformRefused, "not JSON"),
    ({"kind": "no_items"}, ContentUnfetchable, "has no items"),
])
def test_each_failure_of_the_resolver_becomes_its_typed_error(http_platform: LoopbackPlatform, behaviour: Any,
                                                              error: type[Exception], message: str | None) -> None:
    http_platform.add_post(7, [jpeg(7)], behaviour=behaviour)
    with pytest.raises(error, match=message):
        get_content_source().fetch(http_platform.location(7))


@pytest.mark.django_db
def test_a_resolver_that_fails_once_then_answers_is_retried_and_succeeds(http_platform: LoopbackPlatform) -> None:
    http_platform.add_post(8, [jpeg(8)], behaviour={"kind": "fail_first", "count": 1, "status": 500})
    [fetched] = get_content_source().fetch(http_platform.location(8))
    fetched.discard()
    assert [r["status"] for r in http_platform.log()["resolve"]] == [500, 200]


@pytest.mark.django_db
@pytest.mark.parametrize(("behaviour", "error", "message"), [
    ({"kind": "status", "status": 404}, ContentNotFound, None),
    ({"kind": "status", "status": 410}, ContentGone, None),
    ({"kind": "status", "status": 403}, PlatformRefused, "403"),
    ({"kind": "slow_first_byte", "seconds": 3}, PlatformError, None),
    ({"kind": "endless"}, TooLarge, "larger than"),
    ({"kind": "huge_length"}, TooLarge, "2048 MB"),
    ({"kind": "redirect_elsewhere"}, RedirectNotAllowed, "elsewhere.test"),
    ({"kind": "redirect_localhost"}, AddressNotAllowed, "127.0.0.1"),
    ({"kind": "html_as_jpeg"}, NotMedia, "HTML"),
])
def test_each_failure_of_a_download_becomes_its_typed_error_and_leaves_no_file(
        http_platform: LoopbackPlatform, settings: Any, behaviour: Any, error: type[Exception],
        message: str | None) -> None:
    http_platform.add_post(9, [jpeg(9)], media_behaviour=behaviour)
    spool = settings.TAKEDOWN_FETCH_SPOOL_DIR
    before = set(spool.iterdir()) if spool.exists() else set()
    with pytest.raises(error, match=message):
        get_content_source().fetch(http_platform.location(9))
    assert set(spool.iterdir()) == before


@pytest.mark.django_db
def test_a_download_that_fails_once_then_answers_is_retried(http_platform: LoopbackPlatform) -> None:
    http_platform.add_post(10, [jpeg(10)], media_behaviour={"kind": "fail_first", "count": 1, "status": 503})
    [fetched] = get_content_source().fetch(http_platform.location(10))
    fetched.discard()
    assert [m["status"] for m in http_platform.log()["media"]] == [503, 200]


@pytest.mark.django_db
def test_a_jpeg_labelled_as_html_is_taken_for_what_its_bytes_are(http_platform: LoopbackPlatform) -> None:
    http_platform.add_post(11, [jpeg(11)], media_behaviour={"kind": "jpeg_as_html"})
    [fetched] = get_content_source().fetch(http_platform.location(11))
    fetched.discard()
    assert fetched.content_type == "image/jpeg"


# --- Intake: the platform's locations only -------------------------------------------------------------

@pytest.mark.django_db
def test_a_report_naming_a_link_off_the_platform_is_refused_at_once_naming_the_line(
        http_platform: LoopbackPlatform, api: APIClient) -> None:
    payload = notice_payload(locations=["https://platform.test/p/1", "https://elsewhere.example/p/1"])
    response = api.post("/api/v1/reports", payload, format="json")
    assert response.status_code == 400
    [message] = response.json()["errors"]["locations"]
    assert message.startswith("Link 2 (https://elsewhere.example/p/1): It is not on this platform")
    assert "platform.test" in message
    assert not Report.objects.exists()
    assert not http_platform.log()["resolve"]  # refused before anything was fetched


@pytest.mark.django_db(transaction=True)
def test_two_spellings_of_one_post_in_a_report_are_one_item(http_platform: LoopbackPlatform, api: APIClient) -> None:
    payload = notice_payload(locations=["https://platform.test/p/1?utm_source=mail", "http://www.platform.test/p/1/"])
    response = api.post("/api/v1/reports", payload, format="json")
    assert response.status_code == 201, response.content
    report = Report.objects.get(case_number=response.json()["case_number"])
    assert sorted(report.items.values_list("location", "part")) == [("https://platform.test/p/1", 0),
                                                                      ("https://platform.test/p/1", 1)]
    assert len(http_platform.log()["resolve"]) == 1


# --- The pipeline: unprocessable, unavailable, fetched again --------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_refused_download_shows_unprocessable_with_its_reason_and_a_moderator_can_fetch_it_again(
        http_platform: LoopbackPlatform, api: APIClient, client: Any, moderator: User) -> None:
    http_platform.add_post(12, [jpeg(12)], media_behaviour={"kind": "huge_length"})
    response = api.post("/api/v1/reports", notice_payload(locations=[http_platform.location(12)]), format="json")
    report = Report.objects.get(case_number=response.json()["case_number"])
    item = report.items.get()
    assert item.state == ReportedItem.State.UNPROCESSABLE
    [status_item] = report_public_status(report)["items"]
    assert status_item["problem"].startswith("unprocessable: ")
    assert "2048 MB" in status_item["problem"]
    task = report.tasks.get(kind=ReviewTask.Kind.REPORT)  # the case is in the queue all the same
    client.force_login(moderator)
    page = client.get(f"/console/case/{task.pk}").content.decode()
    assert "Unprocessable: " in page and "2048 MB" in page and "Fetch again" in page

    http_platform.add_post(12, [jpeg(12)])  # the platform fixed it
    answer = client.post(f"/console/item/{item.pk}/refetch", {"task": task.pk})
    assert answer.status_code == 302
    item.refresh_from_db()
    assert item.state == ReportedItem.State.RESOLVED and item.media is not None
    assert AuditEvent.objects.filter(action="item.refetch", actor=moderator.username).count() == 1
    assert item.media.hashes.filter(algorithm="pdq").exists()


@pytest.mark.django_db(transaction=True)
def test_a_platform_that_stays_down_leaves_the_item_unavailable_with_the_deadline_running_until_a_later_fetch(
        http_platform: LoopbackPlatform, api: APIClient) -> None:
    http_platform.add_post(13, [jpeg(13)], behaviour={"kind": "status", "status": 503})
    response = api.post("/api/v1/reports", notice_payload(locations=[http_platform.location(13)]), format="json")
    report = Report.objects.get(case_number=response.json()["case_number"])
    item = report.items.get()
    assert item.state == ReportedItem.State.UNAVAILABLE
    assert item.next_fetch_at is not None and item.next_fetch_at > timezone.now()
    assert len(http_platform.log()["resolve"]) == 2  # TAKEDOWN_FETCH_ATTEMPTS, with a wait between
    assert report.deadline_at is not None
    assert report.tasks.filter(kind=ReviewTask.Kind.REPORT).exists()  # in the queue, deadline shown
    assert report_public_status(report)["items"][0]["problem"].startswith("platform unavailable: ")
    assert items_refetch_due() == []  # not yet due

    http_platform.add_post(13, [jpeg(13)])  # back up
    ReportedItem.objects.filter(pk=item.pk).update(next_fetch_at=timezone.now() - timedelta(seconds=1))
    items_refetch()  # the beat task; eager Celery processes the report again inline
    item.refresh_from_db()
    assert item.state == ReportedItem.State.RESOLVED
    assert item.media is not None and item.fetch_attempts == 2
    assert item.media.hashes.filter(algorithm="pdq").exists()


# --- The walkthrough ------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_whole_walkthrough_runs_on_the_http_platform(http_platform: LoopbackPlatform, api: APIClient,
                                                         moderator: User) -> None:
    picture = jpeg(21)
    http_platform.add_post(21, [picture], uploader="user-77")
    # The picture is known to a bank already: the match must show on the case.
    import io

    data = io.BytesIO()
    picture.save(data, format="JPEG")
    pdq = dict(hash_bytes(data.getvalue()).values())["pdq"]
    bank_add_entries(bank=bank_get_or_create(name="partner-ncii"), hashes=[("pdq", pdq)], source="test")

    # Reported by URL, in a spelling of the reporter's own.
    response = api.post("/api/v1/reports", notice_payload(locations=["https://www.platform.test/p/21?ref=share"]),
                        format="json")
    assert response.status_code == 201, response.content
    report = Report.objects.get(case_number=response.json()["case_number"])
    item = report.items.get()
    assert item.state == ReportedItem.State.RESOLVED
    assert item.location == "https://platform.test/p/21"
    assert item.uploader_ref == "user-77" and item.content_type == "image/jpeg"
    assert item.media is not None and item.media.hashes.filter(algorithm="pdq").exists()  # fetched and hashed
    assert Match.objects.filter(media=item.media, bank_entry__bank__name="partner-ncii").exists()  # matched
    assert DetectionResult.objects.filter(media=item.media).exists()  # scored

    take_down(report, moderator)  # → the signed content.remove webhook to the platform

    action = Action.objects.get(decision__report=report)
    assert action.status == Action.Status.DONE
    assert http_platform.state()["posts"]["21"] == "removed"
    [hook] = http_platform.log()["hooks"]
    assert hook["event"] == "content.remove" and hook["location"] == "https://platform.test/p/21"
    assert not hook["problems"]
    assert http_platform.resolve("https://platform.test/p/21").status_code == 410  # no longer served
    with pytest.raises(ContentGone):
        get_content_source().fetch("https://platform.test/p/21")
    report.refresh_from_db()
    assert report.status == Report.Status.REMOVED
    assert report_public_status(report)["items"][0]["state"] == "removed"
