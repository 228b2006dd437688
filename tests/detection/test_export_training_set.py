from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError

from moderation.models import Decision, Media, ReviewTask
from tests.detection.images import encode, scene
from tests.moderation.console_helpers import make_case


def decided(seed: int, outcome: str, reason: str) -> Media:
    task: ReviewTask = make_case(sha256=f"{seed:064x}")
    media = task.report.items.get().media
    assert media is not None
    media.file.save(f"{seed}.png", ContentFile(encode(scene(seed, (96, 64)))), save=True)
    media.mime = "image/png"
    media.save(update_fields=["mime"])
    Decision.objects.create(task=task, report=task.report, outcome=outcome, reason=reason)
    return media


@pytest.mark.django_db
def test_confirmed_and_rejected_synthetic_cases_become_labelled_files_without_personal_data(tmp_path: Path) -> None:
    ai = decided(1, "takedown", "synthetic_ncii")
    real = decided(2, "takedown", "ncii")
    decided(3, "no_violation", "not_intimate")  # says nothing about synthesis
    out = StringIO()

    call_command("export_training_set", "--out", str(tmp_path / "set"), stdout=out)

    summary: dict[str, Any] = json.loads(out.getvalue())
    assert (summary["ai"], summary["real"]) == (1, 1)
    assert (tmp_path / "set" / "ai" / f"{ai.sha256}.png").is_file()
    assert (tmp_path / "set" / "real" / f"{real.sha256}.png").is_file()
    manifest = (tmp_path / "set" / "manifest.jsonl").read_text()
    assert "example.org" not in manifest and "TD-TEST" not in manifest
    assert {json.loads(line)["label"] for line in manifest.splitlines()} == {"ai", "real"}


@pytest.mark.django_db
def test_it_refuses_to_mix_with_an_earlier_export(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")

    with pytest.raises(CommandError, match="not empty"):
        call_command("export_training_set", "--out", str(tmp_path))
