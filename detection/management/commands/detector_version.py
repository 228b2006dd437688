from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection.learned.registry import WeightsError, onnx_export
from detection.models import DetectorVersion
from detection.versions import version_promote, version_register


class Command(BaseCommand):
    help = (
        "Learned-model versions: `add WEIGHTS.pt` (shadow), `promote VERSION`, `list`; `export WEIGHTS.pt` writes "
        "the ONNX file scoring loads for weights trained before exports existed (needs the training extra)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["add", "promote", "list", "export"])
        parser.add_argument("target", nargs="?", default="", help="WEIGHTS.pt for add and export, VERSION for promote.")

    def handle(self, *args: Any, **options: Any) -> None:
        action, target = options["action"], options["target"]
        if action == "add":
            try:
                row = version_register(weights=Path(target))
            except (WeightsError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"{row.version} registered in shadow mode (scored and stored, not used for priority).")
        elif action == "export":
            from detection.learned.export import ExportError  # torch: only this action loads it

            try:
                record = onnx_export(Path(target))
            except (WeightsError, ExportError) as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(json.dumps(record))
        elif action == "promote":
            if not DetectorVersion.objects.filter(version=target).exists():
                raise CommandError(f"No registered version {target!r}; `detector_version list` shows them.")
            self.stdout.write(f"{version_promote(version=target).version} is now active.")
        else:
            for row in DetectorVersion.objects.all():
                self.stdout.write(json.dumps({"version": row.version, "status": row.status, "sha256": row.sha256}))
