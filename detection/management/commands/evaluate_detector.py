from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection.learned import data
from detection.learned.evaluate import cross_validate, evaluate_folder
from detection.learned.registry import WeightsError, card_markdown, default_weights_path, load_torch
from detection.learned.train import TrainConfig, resolve_device


class Command(BaseCommand):
    help = (
        "Evaluate the learned model on DIR/ai and DIR/real (subfolders or name prefixes reported separately): "
        "ROC AUC with a bootstrap 95% interval, accuracy at the operating threshold, calibration error, "
        "robustness to JPEG q70 and 0.5x resizing. --cross-validate trains a fresh model per group-wise fold instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", required=True, type=Path)
        parser.add_argument(
            "--weights",
            type=Path,
            default=None,
            help="A .pt with its card (default: the shipped model); evaluated with torch on --device.",
        )
        parser.add_argument(
            "--common-size",
            type=int,
            default=data.COMMON_SIDE,
            help="Centre-crop and resize every image to this square size first, removing size as a "
            "cue (0: score files as they are).",
        )
        parser.add_argument("--no-robustness", action="store_true", help="Skip the JPEG q70 and resize runs.")
        parser.add_argument(
            "--cross-validate",
            action="store_true",
            help="Group-wise cross-validation: train a fresh model per fold, never on test files.",
        )
        parser.add_argument(
            "--processes-only",
            action="store_true",
            help="With --cross-validate: train on photos and processes only, not on DIR/ai.",
        )
        parser.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="With --cross-validate.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--device", default="cpu", help="cpu or cuda (batched inference).")
        parser.add_argument("--threads", type=int, default=0)
        parser.add_argument("--json", type=Path, default=None, help="Also write the full result here.")
        parser.add_argument(
            "--record",
            action="store_true",
            help="Store the result in the weights' model card (each version keeps its evaluations).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["data"]
        if not (directory / "ai").is_dir() or not (directory / "real").is_dir():
            raise CommandError(f"--data {directory} must contain ai/ and real/ folders.")
        if options["threads"]:
            torch.set_num_threads(options["threads"])
        try:
            device = resolve_device(options["device"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        common = options["common_size"] or None
        if options["cross_validate"]:
            if not common:
                raise CommandError("--cross-validate needs --common-size (training regions are cut at that size).")
            config = TrainConfig(seed=options["seed"], epochs=options["epochs"], device=device)
            result = cross_validate(
                directory, config, common, train_on_ai=not options["processes_only"], progress=self.stderr
            )
            self._print_report(result["out_of_fold"], "out-of-fold")
        else:
            try:
                model = load_torch(options["weights"], device)
            except WeightsError as exc:
                raise CommandError(str(exc)) from exc
            result = evaluate_folder(model, directory, common, not options["no_robustness"], options["seed"])
            self._print_report(result["clean"], "clean")
            for name in ("jpeg_q70", "resize_0.5"):
                if name in result:
                    self._print_row(name, result[name])
            if options["record"]:
                self._record(options["weights"] or default_weights_path(), result)
        if options["json"]:
            options["json"].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        self.stdout.write(json.dumps(result))

    def _print_report(self, report: dict[str, Any], title: str) -> None:
        self.stderr.write(f"{title}: group, n_ai, n_real, AUC [95% CI], accuracy, ECE")
        for name, row in report.items():
            self._print_row(name, row)

    def _print_row(self, name: str, row: dict[str, Any]) -> None:
        low, high = row["auc_ci95"]
        self.stderr.write(
            f"  {name:<22} {row['n_ai']:>4} {row['n_real']:>4}  {row['auc']:.3f} [{low:.3f}, {high:.3f}]  "
            f"{row['accuracy']:.3f}  {row['ece']:.3f}"
        )

    def _record(self, weights: Path, result: dict[str, Any]) -> None:
        card_path = weights.with_suffix(".json")
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card.setdefault("evaluation", {})[f"folder:{Path(result['data']).name}"] = result
        card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        weights.with_suffix(".md").write_text(card_markdown(card), encoding="utf-8")
