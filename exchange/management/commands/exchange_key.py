"""``manage.py exchange_key generate|show``: this instance's Ed25519 signing key for the exchange."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.signing import generate_private_key_pem, instance_public_key_b64, key_id


class Command(BaseCommand):
    help = "Generate this instance's exchange signing key (if missing) or show its public key for partners."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["generate", "show"])

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE)
        if options["action"] == "generate":
            if path.exists():
                self.stdout.write(f"{path} exists already; it is kept.")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(generate_private_key_pem())
                self.stdout.write(f"Wrote a new signing key to {path}.")
        if not path.exists():
            raise CommandError(f"{path} does not exist; run 'manage.py exchange_key generate'.")
        public = instance_public_key_b64()
        self.stdout.write(f"Public key (key id {key_id(public)}), give it to partners to pin:")
        self.stdout.write(public)
