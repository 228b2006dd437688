from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection.learned.probe import ProbeUnavailable
from detection.learned.registry import WeightsError, onnx_export
from detection.models import DetectorVersion
from detection.versions import version_promote, version_register


class Command(BaseCommand):
    help = (
        "Learned-model versions: `add WEIGHTS.pt|PROBE.probe.json` (shadow), `promote VERSION [--user NAME]`, "
        "`list`; `export WEIGHTS.pt` writes "
        "the ONNX file scoring loads for weights trained before exports existed (needs the training extra)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["add", "promote", "list", "export"])
        parser.add_argument("target", nargs="?", default="", help="WEIGHTS.pt for add and export, VERSION for promote.")
        parser.add_argument("--user", default="", help="promote: who decides (recorded in the audit log).")

    def handle(self, *args: Any, **options: Any) -> None:
        action, target = options["action"], options["target"]
        if action == "add":
            try:
                row = version_register(weights=Path(target))
            except (WeightsError, ProbeUnavailable, ValueError) as exc:
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
            actor = options["user"] or f"command line ({getpass.getuser()})"
            self.stdout.write(f"{version_promote(version=target, actor=actor).version} is now active.")
        else:
            for row in DetectorVersion.objects.all():
                self.stdout.write(json.dumps({"version": row.version, "kind": row.kind, "status": row.status,
                                              "sha256": row.sha256}))
