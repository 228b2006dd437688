"""Partner feedback in triage: a case matching a hash partners report Blocked moves up, with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.entries import feedback_record
from moderation.models import Match, ReviewTask
from moderation.services.intake import Notice, report_submit
from tests.conftest import notice_payload
from tests.exchange.conftest import PartnerSetup


@pytest.mark.django_db(transaction=True)
def test_a_case_matching_a_hash_partners_block_moves_up_with_the_reason(demo: Any, partner: PartnerSetup) -> None:
    notice = Notice(**{**notice_payload(), "locations": ["demo://content/3"]})  # type: ignore[arg-type]
    report = report_submit(notice=notice).report
    task = ReviewTask.objects.get(report=report)
    media_ids = report.items.exclude(media=None).values_list("media_id", flat=True)
    match = Match.objects.filter(media_id__in=list(media_ids)).select_related("bank_entry").first()
    assert match is not None, "demo content 3 matches the demo bank"
    before = task.priority
    assert "partner_blocked" not in [r["code"] for r in task.priority_reasons]
    feedback_record(entry=match.bank_entry, partner=partner.partner, verdict="blocked", tags=["ncii"])
    task.refresh_from_db()
    reasons = {r["code"]: r for r in task.priority_reasons}
    assert "partner_blocked" in reasons and "northwind" in reasons["partner_blocked"]["detail"]
    assert task.priority == before + reasons["partner_blocked"]["points"]
    feedback_record(entry=match.bank_entry, partner=partner.partner, verdict="not_blocked")
    task.refresh_from_db()
    assert task.priority == before
