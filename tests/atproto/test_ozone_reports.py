"""Reports filed inside the app (``com.atproto.moderation.createReport`` to the reference Ozone) become Takedown
cases with the legal clock, and Takedown's decisions close them in Ozone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured

from moderation.models import Action, AuditEvent, OzoneReport, Report, ReportedItem, StreamCursor
from moderation.services.atproto_reports import ozone_reports_sync
from moderation.services.decisions import decision_make
from tests.atproto.network import Account, AtprotoNetwork, Post, jpeg
from tests.moderation.legal_helpers import take_down
from tests.platform_server.fixtures import make_image

pytestmark = [pytest.mark.atproto, pytest.mark.django_db(transaction=True)]

NCII = "tools.ozone.report.defs#reasonSexualNCII"
DEEPFAKE = "tools.ozone.report.defs#reasonSexualDeepfake"
SPAM = "com.atproto.moderation.defs#reasonSpam"
CLOSED = "tools.ozone.moderation.defs#reviewClosed"


def posted(network: AtprotoNetwork, seed: int) -> tuple[Account, Post]:
    author = network.create_account()
    post = author.post("a generated picture", [jpeg(make_image(seed, size=(400, 300)))])
    network.sync()
    return author, post


def case_of(post: Post) -> Report:
    return Report.objects.get(items__location=post.uri)


def test_an_in_app_ncii_report_becomes_a_case_with_the_legal_clock_and_others_join_it(
        atproto_settings: AtprotoNetwork) -> None:
    network = atproto_settings
    _author, post = posted(network, 31)
    network.create_account().report(post, NCII, "This is a picture of me, shared without my consent.")
    network.create_account().report(post, DEEPFAKE)
    network.sync()

    result = ozone_reports_sync()

    report = case_of(post)
    assert report.source == Report.Source.PLATFORM
    assert result.opened >= 1 and result.joined >= 1
    assert report.ozone_reports.count() == 2  # the second report joined the open case
    assert {r.reason_type for r in report.ozone_reports.all()} == {NCII, DEEPFAKE}
    assert report.deadline_at is not None
    assert report.deadline_at - report.received_at == timedelta(hours=48)
    assert "shared without my consent" in report.statement
    assert report.reporter_email == "" and report.reporter_name.startswith("did:plc:")
    item = report.items.get()
    assert item.state == ReportedItem.State.RESOLVED, item.error  # fetched from the PDS, hashed, scored
    assert item.media is not None and item.media.hashes.filter(algorithm="pdq").exists()
    assert report.tasks.filter(kind="report").exists()
    assert AuditEvent.objects.filter(action="report.received", object_id=report.pk).exists()

    again = ozone_reports_sync()  # pulling again opens nothing new
    assert Report.objects.filter(items__location=post.uri).count() == 1
    assert again.opened == 0 and again.joined == 0
    assert StreamCursor.objects.get(name=f"ozone-reports:{network.ozone_did}").value


def test_reports_for_other_reasons_or_about_accounts_stay_in_ozone(atproto_settings: AtprotoNetwork) -> None:
    network = atproto_settings
    author, spam_post = posted(network, 32)
    reporter = network.create_account()
    reporter.report(spam_post, SPAM, "spam")
    answer = network.http.post(
        f"{network.pds}/xrpc/com.atproto.moderation.createReport",
        headers={"Authorization": f"Bearer {reporter.access_jwt}",
                 "atproto-proxy": f"{network.ozone_did}#atproto_labeler"},
        json={"reasonType": NCII, "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": author.did}})
    answer.raise_for_status()
    network.sync()

    ozone_reports_sync()

    assert not Report.objects.filter(items__location=spam_post.uri).exists()
    assert not OzoneReport.objects.filter(subject_uri__contains=author.did).exists()


def test_a_takedown_in_takedown_closes_the_report_in_ozone(atproto_settings: AtprotoNetwork, moderator: User) -> None:
    network = atproto_settings
    author, post = posted(network, 33)
    network.create_account().report(post, NCII)
    network.sync()
    ozone_reports_sync()
    report = case_of(post)
    assert len(network.ozone_open_reports(post.uri)) == 1

    decision = take_down(report, moderator)
    assert Action.objects.get(decision=decision).status == Action.Status.DONE
    network.sync()
    result = ozone_reports_sync()

    status = network.ozone_subject_status(post.uri)
    assert status is not None and status["takendown"] and status["reviewState"] == CLOSED
    assert network.ozone_open_reports(post.uri) == []  # closed in Ozone's report queue too
    assert network.blob_status(author.did, post.blob_cids[0]) != 200
    assert result.resolved >= 1
    assert report.ozone_reports.filter(resolved_at__isnull=False).count() == 1
    assert ozone_reports_sync().resolved == 0  # once


def test_a_case_closed_without_removal_closes_the_report_in_ozone_naming_the_case(
        atproto_settings: AtprotoNetwork, moderator: User) -> None:
    network = atproto_settings
    author, post = posted(network, 34)
    network.create_account().report(post, NCII, "not really")
    network.sync()
    ozone_reports_sync()
    report = case_of(post)
    task = report.tasks.get(kind="report")

    decision_make(task_id=task.pk, user=moderator, outcome="no_violation", reason="not_intimate")
    ozone_reports_sync()
    network.sync()

    status = network.ozone_subject_status(post.uri)
    assert status is not None and status["reviewState"] == CLOSED and not status["takendown"]
    assert network.ozone_open_reports(post.uri) == []
    acknowledged = [e for e in network.ozone_events(post.uri) if e["event"]["$type"].endswith("#modEventAcknowledge")]
    assert len(acknowledged) == 1
    assert report.case_number in acknowledged[0]["event"]["comment"]
    assert network.blob_status(author.did, post.blob_cids[0]) == 200  # left up


def test_an_in_app_report_of_a_post_without_media_shows_the_moderator_why_nothing_was_fetched(
        atproto_settings: AtprotoNetwork) -> None:
    network = atproto_settings
    author = network.create_account()
    words = author.post("only words here")
    network.sync()
    network.create_account().report(words, NCII)
    network.sync()

    ozone_reports_sync()

    item = case_of(words).items.get()
    assert item.state == ReportedItem.State.UNPROCESSABLE
    assert "no images or video" in item.error


def test_a_report_filed_while_takedown_was_not_pulling_is_found_on_the_next_pull(
        atproto_settings: AtprotoNetwork) -> None:
    network = atproto_settings
    _a, first = posted(network, 35)
    network.create_account().report(first, NCII)
    network.sync()
    ozone_reports_sync()
    position = StreamCursor.objects.get(name=f"ozone-reports:{network.ozone_did}").value

    _b, second = posted(network, 36)
    network.create_account().report(second, NCII)
    network.sync()
    ozone_reports_sync()

    assert case_of(first) != case_of(second)
    assert StreamCursor.objects.get(name=f"ozone-reports:{network.ozone_did}").value >= position


def test_pulling_reports_without_ozone_configured_says_what_to_set(atproto_settings: AtprotoNetwork,
                                                                   settings: Any) -> None:
    settings.TAKEDOWN_ATPROTO_OZONE_URL = ""
    with pytest.raises(ImproperlyConfigured, match="TAKEDOWN_ATPROTO_OZONE_URL"):
        ozone_reports_sync()
