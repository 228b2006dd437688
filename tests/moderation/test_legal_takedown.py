"""After a takedown: known copies among stored media are removed too, and re-uploads are blocked."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from moderation.models import Action, DemoContentItem, ReportedItem, StatementOfReasons
from moderation.services.enforcement import copies_sweep
from tests.moderation.legal_helpers import scan_verdict, submit, take_down


@pytest.mark.django_db(transaction=True)
def test_a_takedown_sweeps_stored_media_and_removes_identical_copies(demo: Any, moderator: User) -> None:
    # The same image sits at two places on the platform: item 30 and a re-post at item 31.
    original = DemoContentItem.objects.get(number=30)
    repost = DemoContentItem.objects.get(number=31)
    with original.file.open("rb") as handle:
        data = handle.read()
    repost.file.save("repost.jpg", __import__("django.core.files.base", fromlist=["ContentFile"]).ContentFile(data))
    report = submit(locations=["demo://content/30"]).report
    # Someone else then reported the re-post with another post, so their report cannot join the case above
    # (services/joining.py): the copy sits in a case of its own.
    other_case = submit(locations=["demo://content/31", "demo://content/5"]).report
    # Deduplicated: the original and the re-post resolve to one stored media.
    assert ReportedItem.objects.get(report=other_case, location="demo://content/31").media_id == \
        ReportedItem.objects.get(report=report).media_id
    decision = take_down(report, moderator)
    copy_action = Action.objects.get(decision=decision, item__report=other_case)
    assert copy_action.status == Action.Status.DONE
    assert DemoContentItem.objects.get(number=31).status == DemoContentItem.Status.REMOVED
    assert ReportedItem.objects.get(report=other_case, location="demo://content/31").state == \
        ReportedItem.State.REMOVED
    statement = StatementOfReasons.objects.get(item__report=other_case)
    assert statement.payload["source_type"] == "SOURCE_VOLUNTARY"  # own initiative, found by hash matching
    assert statement.payload["automated_detection"] == "Yes"
    assert copies_sweep(decision_id=decision.pk) == []  # a second sweep adds nothing
    assert scan_verdict(data) == "block"
