"""``manage.py match PATH...``: hash image files and match them against the banks, one JSON line each."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from hashing.algorithms import hash_file
from hashing.errors import MediaError, UnreadableMedia
from hashing.matching import match_hashes


def match_one(path: str) -> dict[str, Any]:
    """``{"path", "matches": [...]}`` nearest first, or ``{"path", "error"}``."""
    try:
        hashes = hash_file(path)
    except UnreadableMedia as exc:
        cause = exc.__cause__
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(exc)
        return {"path": path, "error": f"cannot read the file: {reason}"}
    except MediaError as exc:
        return {"path": path, "error": str(exc)}
    matches = [
        {"bank": m.bank_name, "entry_id": m.entry_id, "algorithm": m.algorithm, "distance": m.distance,
         "threshold": m.threshold, "strength": m.strength, "blocks_uploads": m.blocks_uploads,
         "source": m.entry_source}
        for m in match_hashes(hashes.values())
    ]
    return {"path": path, "matches": matches}


class Command(BaseCommand):
    help = "Match image files against the active hash banks: one JSON object per line, nearest match first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--json", action="store_true", help="JSON lines output (the only format).")

    def handle(self, *args: Any, **options: Any) -> None:
        for path in options["paths"]:
            self.stdout.write(json.dumps(match_one(path)))
