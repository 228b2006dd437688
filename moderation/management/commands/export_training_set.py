from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from moderation.models import Decision, Media
from moderation.selectors.training import LABELS  # which decisions say what about synthesis
from moderation.services.media import media_read


class Command(BaseCommand):
    help = (
        "Export media whose latest decision confirmed or rejected 'synthetic' as DIR/ai and DIR/real, with "
        "manifest.jsonl (sha256, label, decision id, date; no personal data), for `train_detector --with-ai`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, type=Path, help="An empty or new folder.")

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"]
        if out.exists() and any(out.iterdir()):
            raise CommandError(f"--out {out} is not empty; pick a new folder so old and new exports do not mix.")
        latest: dict[int, Decision] = {}
        for decision in Decision.objects.filter(automated=False).order_by("created_at", "id"):
            latest[decision.report_id] = decision  # later decisions on a report replace earlier ones
        written: dict[str, str] = {}
        rows = []
        for report_id, decision in latest.items():
            label = LABELS.get((decision.outcome, decision.reason))
            if label is None:
                continue
            media = Media.objects.filter(reported_items__report_id=report_id).exclude(file="").distinct()
            for item in media:
                if item.sha256 in written:
                    if written[item.sha256] != label:
                        rows.append({"sha256": item.sha256, "conflict": True})
                    continue
                extension = mimetypes.guess_extension(item.mime) or ".bin"
                target = out / label / f"{item.sha256}{extension}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(media_read(item))
                written[item.sha256] = label
                rows.append(
                    {
                        "sha256": item.sha256,
                        "label": label,
                        "decision": decision.pk,
                        "reason": decision.reason,
                        "decided_at": decision.created_at.isoformat(),
                    }
                )
        out.mkdir(parents=True, exist_ok=True)
        (out / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        counts = {label: sum(1 for value in written.values() if value == label) for label in ("ai", "real")}
        self.stdout.write(
            json.dumps({"out": str(out), **counts, "conflicts": sum(1 for row in rows if row.get("conflict"))})
        )
