"""Re-encrypt every stored media file under the current (first) key of TAKEDOWN_MEDIA_KEYS.

Rotation: put a new key first in TAKEDOWN_MEDIA_KEYS, keep the old ones after it, restart, run this
command, then remove the old keys. Plaintext files from before encryption are encrypted too. It can be
run again safely: files already under the current key are skipped.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from moderation.models import Media
from moderation.security.crypto import MediaDecryptError, current_key_id, encrypt_media, key_id_of
from moderation.services.media import media_read, media_write_raw


class Command(BaseCommand):
    help = "Re-encrypt stored media under the current media key (and encrypt plaintext files)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        current = current_key_id()
        if current is None:
            raise CommandError("TAKEDOWN_MEDIA_KEYS is not set: there is no key to encrypt under.")
        done = skipped = missing = failed = 0
        for media in Media.objects.exclude(file="").only("pk", "file").iterator(chunk_size=500):
            try:
                with media.file.open("rb") as handle:
                    head = handle.read(128)
            except (FileNotFoundError, ValueError):
                missing += 1
                continue
            if key_id_of(head) == current:
                skipped += 1
                continue
            try:
                data = media_read(media)
            except MediaDecryptError as exc:
                self.stderr.write(f"media {media.pk}: {exc}")
                failed += 1
                continue
            if not options["dry_run"]:
                media_write_raw(media, encrypt_media(data))
            done += 1
        verb = "would re-encrypt" if options["dry_run"] else "re-encrypted"
        self.stdout.write(f"{verb} {done}, already under {current}: {skipped}, file missing: {missing}, "
                          f"failed: {failed}")
        if failed:
            raise CommandError(f"{failed} file(s) could not be decrypted with the configured keys.")
