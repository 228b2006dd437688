from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection.embedding import EncoderUnavailable
from detection.learned import data
from detection.learned import probe as probes
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
        parser.add_argument(
            "--learning-curve",
            action="store_true",
            help="The embedding probe: group-aware cross-validated AUC (bootstrap 95%% CI) against the number of "
            "labelled training examples (--sizes), and the full probe's cross-validated figures.",
        )
        parser.add_argument(
            "--compare-processes",
            metavar="GROUP",
            default="",
            help="Photos of GROUP (e.g. real/people) put through every generator-like process: AUC of the artefact "
            "model, the embedding probe and both combined, per process (does the artefact model add anything?).",
        )
        parser.add_argument("--sizes", default="10,20,50,100,200,500,1000", help="With --learning-curve.")
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
        if options["compare_processes"]:
            self._compare(directory, options)
            return
        if options["learning_curve"]:
            self._learning_curve(directory, options)
            return
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

    def _compare(self, directory: Path, options: dict[str, Any]) -> None:
        from detection.learned.evaluate import compare_on_processes
        from detection.learned.processes import PROCESSES
        from detection.signals import embedding as embedding_signal
        from detection.signals import model as model_signal

        if options["threads"]:
            torch.set_num_threads(options["threads"])
        photos = [item for item in data.list_items(directory) if item.group == options["compare_processes"]]
        if not photos:
            raise CommandError(f"--compare-processes: no group {options['compare_processes']} under {directory}.")
        try:
            model = load_torch(options["weights"])
            probe = probes.default_probe()
        except (WeightsError, probes.ProbeUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        result = compare_on_processes(model, probe, [data.load_rgb(item.path, max_side=1400) for item in photos],
                                      tuple(PROCESSES), seed=options["seed"],
                                      model_signal=(model_signal.WEIGHT, model_signal.VALUE_RANGE),
                                      probe_range=embedding_signal.VALUE_RANGE)
        self.stderr.write("process: AUC [95% CI] of the artefact model, the embedding probe, both combined")
        for name in PROCESSES:
            cells = [f"{row['auc']:.3f} [{row['auc_ci95'][0]:.3f}, {row['auc_ci95'][1]:.3f}]"
                     for row in (result[name]["model"], result[name]["probe"], result[name]["combined"])]
            self.stderr.write(f"  {name:<16} " + "   ".join(cells))
        if options["json"]:
            options["json"].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        self.stdout.write(json.dumps(result))

    def _learning_curve(self, directory: Path, options: dict[str, Any]) -> None:
        try:
            sizes = [int(size) for size in options["sizes"].split(",") if size.strip()]
        except ValueError as exc:
            raise CommandError(f"--sizes must be whole numbers separated by commas: {exc}") from exc
        self.stderr.write(f"Embedding the images of {directory} ...")
        try:
            x, y, groups, _ = probes.embed_folders([directory], progress=self.stderr)
            probes.check_enough(y, probes.near_duplicate_groups(x, groups))
        except (EncoderUnavailable, probes.NotEnoughExamples) as exc:
            raise CommandError(str(exc)) from exc
        curve = probes.learning_curve(x, y, groups, sizes, seed=options["seed"])
        full = probes.cross_validate(x, y, probes.near_duplicate_groups(x, groups), seed=options["seed"])
        self.stderr.write("learning curve (group-aware CV, pooled out-of-fold): training examples, AUC [95% CI]")
        for row in curve:
            low, high = row["auc_ci95"]
            note = " (all of each training fold)" if row["all"] else ""
            self.stderr.write(f"  {row['examples']:>6}  {row['auc']:.3f} [{low:.3f}, {high:.3f}]{note}")
        low, high = full["auc_ci95"]
        self.stderr.write(
            f"calibrated probe, {full['folds']} folds over {full['groups']} groups: AUC {full['auc']:.3f} "
            f"[{low:.3f}, {high:.3f}], accuracy {full['accuracy']:.3f}, ECE {full['ece']:.3f}, "
            f"calibration slope {full['calibration_slope']:.3f}"
        )
        result = {"data": str(directory), "learning_curve": curve, "cross_validation": full}
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
