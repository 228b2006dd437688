from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from hashing.algorithms import hash_file
from hashing.errors import MediaError, UnreadableMedia

# Files handed to a worker process at a time: enough to amortise the hand-over, small enough that the
# output (which keeps input order) does not stall behind one slow batch.
_FILES_PER_TASK = 4


def hash_one(path: str) -> dict[str, Any]:
    """``{"path", pdq, pdq_quality, phash, dhash, md5, sha256}``, or ``{"path", "error"}``."""
    try:
        return {"path": path, **hash_file(path).as_dict()}
    except UnreadableMedia as exc:
        cause = exc.__cause__
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(exc)
        return {"path": path, "error": f"cannot read the file: {reason}"}
    except MediaError as exc:
        return {"path": path, "error": str(exc)}


class Command(BaseCommand):
    help = "Hash image files: one JSON object per line with pdq, pdq_quality, phash, dhash, md5, sha256."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--json", action="store_true", help="JSON lines output (the only format).")
        parser.add_argument(
            "--jobs", type=int, default=1, metavar="N",
            help="Hash N files in parallel, in separate processes (output keeps the input order).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["json"]:
            raise CommandError("Pass --json: the output is one JSON object per line.")
        jobs: int = options["jobs"]
        if jobs < 1:
            raise CommandError("--jobs must be 1 or more.")
        paths: list[str] = options["paths"]
        progress = tqdm(total=len(paths), unit="file", file=sys.stderr, disable=not sys.stderr.isatty())
        with progress:
            for line in self._results(paths, jobs):
                self.stdout.write(json.dumps(line))
                progress.update(1)

    def _results(self, paths: list[str], jobs: int) -> Iterator[dict[str, Any]]:
        if jobs == 1 or len(paths) == 1:
            yield from map(hash_one, paths)
            return
        with ProcessPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
            yield from pool.map(hash_one, paths, chunksize=_FILES_PER_TASK)
