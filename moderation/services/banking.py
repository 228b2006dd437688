"""Hash banks fed by cases: the confirmed bank gets a removed case's hashes, and a case's hashes are withdrawn
from every bank when it is withdrawn or a removal is reversed on appeal."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hashing import banks
from hashing.models import Bank, BankEntry
from hashing.video_banks import bank_withdraw_videos_by_source
from moderation.audit import audit_record
from moderation.models import MediaHash, Report
from moderation.services.video import report_videos_to_bank

# Hashes of removed media that go into the confirmed bank, so re-uploads are blocked.
CONFIRMED_ALGORITHMS = ("pdq", "md5", "sha256")


def confirmed_hashes_bank(*, report: Report, actor: str) -> None:
    """Add the hashes (PDQ, MD5, SHA-256, and video frame signatures) of a removed case's media to the
    confirmed bank, so copies and re-uploads match (the scan API blocks them)."""
    bank = banks.bank_get_or_create(name=settings.TAKEDOWN_CONFIRMED_BANK, kind=Bank.Kind.LOCAL,
                              description="Hashes of content removed after review; blocks re-uploads.")
    hashes = list(MediaHash.objects.filter(media__reported_items__report=report,
                                           algorithm__in=CONFIRMED_ALGORITHMS)
                  .values_list("algorithm", "value").distinct())
    added = banks.bank_add_entries(bank=bank, hashes=hashes, source=f"case:{report.case_number}")
    # Videos also bank their frame signatures, so re-encoded copies and clips match (hashing.video).
    videos = report_videos_to_bank(report=report, bank=bank, source=f"case:{report.case_number}")
    if added or videos:
        audit_record(actor=actor, action="bank.entries_added", object_type="bank", object_id=bank.pk,
                     data={"entries": [e.pk for e in added], "case_number": report.case_number,
                           "videos": [v.pk for v in videos]})


def hashes_withdraw(*, case_number: str, actor: str, why: str) -> int:
    """Withdraw every bank entry that came from this case, in every bank (local, victim-submitted and the
    outbound banks partners pull), so it stops matching everywhere. Returns how many changed."""
    source = f"case:{case_number}"
    with transaction.atomic():
        rows = list(BankEntry.objects.select_for_update().filter(source=source, status=BankEntry.Status.ACTIVE)
                    .order_by("pk").values_list("pk", "bank_id", "algorithm", "value"))
        ids = [row[0] for row in rows]
        count = 0
        # Through the banks' own service, bank by bank: it records each change for matchers and feeds.
        for bank in Bank.objects.filter(pk__in={row[1] for row in rows}).order_by("pk"):
            count += banks.bank_withdraw_entries(bank=bank, hashes=[(a, v) for _pk, b, a, v in rows if b == bank.pk])
        BankEntry.objects.filter(pk__in=ids).update(updated_at=timezone.now())  # feeds list changes by time
        videos = bank_withdraw_videos_by_source(source=source)
        if count or videos:
            audit_record(actor=actor, action="bank.entries_withdrawn", object_type="case", object_id=case_number,
                         data={"entries": ids, "videos": videos, "why": why})
    return count + len(videos)
