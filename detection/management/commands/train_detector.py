from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import torch
from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection.embedding import EncoderUnavailable
from detection.learned import data
from detection.learned import probe as probes
from detection.learned.evaluate import evaluate_processes, probabilities, report
from detection.learned.export import ExportError, missing_requirement
from detection.learned.network import TorchLogits
from detection.learned.probe import MIN_PER_CLASS
from detection.learned.processes import PROCESSES, TRAIN_PROCESSES
from detection.learned.registry import WEIGHTS_DIR, LoadedModel, save
from detection.learned.train import TrainConfig, train

DECODE_SIDE = 1400  # photos are decoded at most this large: training uses short sides up to 1400


class Command(BaseCommand):
    help = (
        "Train the learned artefact model on real photos (DIR/real) and fakes made from them by generator-like "
        "processes, optionally plus DIR/ai images; writes <version>.pt, its ONNX export <version>.onnx (what "
        "scoring loads; needs the training extra's `onnx`), their sha256 and the model card."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--data",
            required=True,
            type=Path,
            action="append",
            help="Folder with real/ (photos) and optionally ai/ (e.g. from export_training_set); with --probe "
            "repeatable (labelled folders and an export of the moderators' confirmed decisions together).",
        )
        parser.add_argument(
            "--probe",
            action="store_true",
            help="Train the embedding probe (logistic regression on CLIP embeddings, calibrated, group-aware "
            "cross-validation) instead of the artefact network; writes <name>.probe.json.",
        )
        parser.add_argument(
            "--min-per-class",
            type=int,
            default=MIN_PER_CLASS,
            help="With --probe: refuse to train with fewer examples of either class.",
        )
        parser.add_argument("--with-ai", action="store_true", help="Also train on DIR/ai images as positives.")
        parser.add_argument(
            "--hold-out",
            action="append",
            default=[],
            metavar="GROUP",
            help="A group (e.g. real/people) kept out of training and used to test held-out processes; repeatable.",
        )
        parser.add_argument(
            "--processes",
            default=",".join(TRAIN_PROCESSES),
            help=f"Training processes, comma-separated, of: {', '.join(PROCESSES)}.",
        )
        parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--regions", type=int, default=TrainConfig.regions_per_photo, help="Training regions per photo and scale."
        )
        parser.add_argument(
            "--scales", type=int, default=TrainConfig.scales_per_photo, help="Scaled copies of each photo."
        )
        parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda.")
        parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default).")
        parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="Where the weights and card are written.")
        parser.add_argument("--name", default="", help="Version name of the weights (default artefact-<UTC date>).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["probe"]:
            self._probe(options)
            return
        if len(options["data"]) > 1:
            raise CommandError("The artefact network trains on one --data folder; several are for --probe.")
        directory: Path = options["data"][0]
        processes = tuple(name.strip() for name in options["processes"].split(",") if name.strip())
        unknown = [name for name in processes if name not in PROCESSES]
        if unknown:
            raise CommandError(f"--processes: unknown {', '.join(unknown)}; known: {', '.join(PROCESSES)}.")
        missing = missing_requirement()  # before minutes of training, not after
        if missing:
            raise CommandError(missing)
        if options["threads"]:
            torch.set_num_threads(options["threads"])
        items = data.list_items(directory)
        held_out = set(options["hold_out"])
        absent = held_out - {item.group for item in items}
        if absent:
            raise CommandError(f"--hold-out: no group {', '.join(sorted(absent))} under {directory}.")
        real_train = [item for item in items if item.label == 0 and item.group not in held_out]
        ai_train = (
            [item for item in items if item.label == 1 and item.group not in held_out] if options["with_ai"] else []
        )
        if len(real_train) < 6:
            raise CommandError(f"{directory}/real needs at least 6 photos for training; found {len(real_train)}.")
        self.stderr.write(f"Reading {len(real_train)} photos and {len(ai_train)} AI images from {directory} ...")
        photos = [data.load_rgb(item.path, max_side=DECODE_SIDE) for item in real_train]
        ai_images = [data.load_rgb(item.path, max_side=DECODE_SIDE) for item in ai_train]
        config = TrainConfig(
            seed=options["seed"],
            regions_per_photo=options["regions"],
            scales_per_photo=options["scales"],
            processes=processes,
            epochs=options["epochs"],
            device=options["device"],
        )
        try:
            result = train(
                photos,
                config,
                ai_images,
                progress=self.stderr,
                sources={
                    "data": str(directory),
                    "held_out_groups": sorted(held_out),
                    "real_files": [str(item.path.name) for item in real_train],
                    "ai_files": [str(item.path.name) for item in ai_train],
                },
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        version = options["name"] or f"artefact-{datetime.datetime.now(datetime.UTC):%Y.%m.%d}"
        model = LoadedModel(version, TorchLogits(result.net), result.calibration, result.threshold, result.card)
        card = result.card
        evaluation: dict[str, Any] = card["evaluation"]
        held_photos = [item for item in items if item.label == 0 and item.group in held_out]
        if held_photos:
            self.stderr.write(f"Testing on {len(held_photos)} held-out photos, all processes ...")
            evaluation["held_out_photos"] = evaluate_processes(
                model,
                [data.load_rgb(item.path, max_side=DECODE_SIDE) for item in held_photos],
                tuple(name for name in PROCESSES),
                seed=options["seed"],
            )
            evaluation["held_out_photos"]["trained_processes"] = list(processes)
            evaluation["held_out_photos"]["unseen_processes"] = [name for name in PROCESSES if name not in processes]
        unseen = [item for item in items if item.group in held_out or (item.label == 1 and not options["with_ai"])]
        if {item.label for item in unseen} == {0, 1}:
            self.stderr.write(f"Testing on {len(unseen)} files never trained on, at {data.COMMON_SIDE} px ...")
            images = [data.common_size(data.load_rgb(item.path, max_side=2 * data.COMMON_SIDE)) for item in unseen]
            evaluation["unseen_files"] = report(unseen, probabilities(model, images), result.threshold, options["seed"])
        try:
            weights = save(result.net, result.calibration, result.threshold, card, options["out"], version)
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        saved = json.loads(weights.with_suffix(".json").read_text())
        self.stdout.write(
            json.dumps(
                {
                    "version": version,
                    "weights": str(weights),
                    "sha256": saved["sha256"],
                    "onnx": saved["onnx"]["file"],
                    "onnx_sha256": saved["onnx"]["sha256"],
                    "seconds": card["training"]["seconds"],
                    "evaluation": _headline(evaluation),
                }
            )
        )


    def _probe(self, options: dict[str, Any]) -> None:
        directories: list[Path] = options["data"]
        for directory in directories:
            if not (directory / "ai").is_dir() or not (directory / "real").is_dir():
                raise CommandError(f"--data {directory} must contain ai/ and real/ folders.")
        version = options["name"] or f"probe-{datetime.datetime.now(datetime.UTC):%Y.%m.%d}"
        self.stderr.write(f"Embedding the images of {', '.join(map(str, directories))} ...")
        try:
            x, y, groups, names = probes.embed_folders(directories, progress=self.stderr)
        except EncoderUnavailable as exc:
            raise CommandError(str(exc)) from exc
        try:
            probe = probes.train(x, y, groups, version, seed=options["seed"], minimum=options["min_per_class"],
                                 sources={"data": [str(d) for d in directories],
                                          "files": [Path(n).name for n in names]})
        except probes.NotEnoughExamples as exc:
            raise CommandError(str(exc)) from exc
        path = probes.save(probe, options["out"])
        evaluation = probe.card["evaluation"]["cross_validation"]
        self.stderr.write(
            f"Group-aware {evaluation['folds']}-fold cross-validation ({evaluation['groups']} groups): AUC "
            f"{evaluation['auc']:.3f} [{evaluation['auc_ci95'][0]:.3f}, {evaluation['auc_ci95'][1]:.3f}], accuracy "
            f"{evaluation['accuracy']:.3f}, ECE {evaluation['ece']:.3f}, calibration slope "
            f"{evaluation['calibration_slope']:.3f} -> combiner weight {probe.weight}"
        )
        self.stdout.write(json.dumps({"version": version, "probe": str(path), "sha256": probes.sha256_of(path),
                                      "weight": probe.weight, "cross_validation": evaluation}))


def _headline(evaluation: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in evaluation.items():
        if isinstance(value, dict) and "auc" in value:
            out[key] = {"auc": value["auc"], "auc_ci95": value["auc_ci95"]}
        elif isinstance(value, dict):
            out[key] = {
                name: {"auc": part["auc"], "auc_ci95": part["auc_ci95"]}
                for name, part in value.items()
                if isinstance(part, dict) and "auc" in part
            }
    return out
