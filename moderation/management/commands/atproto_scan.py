"""``manage.py atproto_scan``: run the firehose scanner (docs/platforms.md "Proactive scanning").

Runs until SIGTERM or SIGINT (Ctrl-C), then finishes the event in hand, saves the cursor and prints what it did.
A SIGKILL loses nothing: the next run resumes from the saved cursor (``services/atproto_scan.py``).
"""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from prometheus_client import start_http_server

from moderation.services.atproto_scan import CursorAhead, FirehoseScanner


class Command(BaseCommand):
    help = ("Scan the AT Protocol repository event stream (TAKEDOWN_ATPROTO_FIREHOSE_URL): hash every image of every "
            "new post, match it against the banks, and open a case or take the post down as the bank's policy says.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="", help="The stream (default: TAKEDOWN_ATPROTO_FIREHOSE_URL).")
        start = parser.add_mutually_exclusive_group()
        start.add_argument("--from-start", action="store_true",
                           help="Ignore the saved cursor once and scan from the oldest event the server keeps.")
        start.add_argument("--cursor", type=int, default=None, metavar="SEQ",
                           help="Ignore the saved cursor once and scan the events after SEQ.")
        start.add_argument("--reset-cursor", action="store_true",
                           help="Forget the saved cursor and exit; the next run starts at the live end of the stream.")
        parser.add_argument("--show-cursor", action="store_true", help="Print the saved cursor and exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"] or settings.TAKEDOWN_ATPROTO_FIREHOSE_URL
        if not url:
            raise CommandError("Set TAKEDOWN_ATPROTO_FIREHOSE_URL to the stream to scan (e.g. "
                               "wss://pds.example/xrpc/com.atproto.sync.subscribeRepos), or pass --url.")
        try:
            scanner = FirehoseScanner(url=url)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if options["show_cursor"]:
            self.stdout.write(f"{scanner.name}: {scanner.cursor()}")
            return
        if options["reset_cursor"]:
            scanner.cursor_set(None)
            self.stdout.write(f"{scanner.name}: cursor forgotten; the next run starts at the live end.")
            return
        port = settings.TAKEDOWN_ATPROTO_SCAN_METRICS_PORT
        if port:
            start_http_server(port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: scanner.stop())
        start = 0 if options["from_start"] else options["cursor"]
        origin = start if start is not None else scanner.cursor()
        self.stdout.write(f"{scanner.name}: scanning from "
                          + (f"cursor {origin}" if origin is not None else "the live end"))
        self.stdout.flush()
        try:
            stats = scanner.run(start=start)
        except CursorAhead as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{scanner.name}: stopped at cursor {scanner.cursor()}: {stats.events} events, {stats.image_posts} posts "
            f"with images, {stats.images} images hashed, {stats.matches} matched ({stats.takedowns} taken down), "
            f"{stats.already_handled} already handled, {stats.frame_errors} frames passed over, "
            f"{stats.connections} connections.")
