"""Versioned weights of the artefact model: where they live, how they are checked and loaded.

A version is three files side by side: ``<version>.pt`` (a torch state dict), ``<version>.json`` (its
model card: sha256 of the weights, architecture, calibration, how it was trained, its evaluation)
and ``<version>.md`` (the same card for people). Loading refuses weights whose sha256 differs from
the card's. The shipped default lives in `detection/weights/`; an operator who retrains points
``TAKEDOWN_DETECTOR_WEIGHTS`` at their own ``.pt`` (its card beside it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from detection.learned.network import ArtefactNet, Calibration

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_VERSION = "artefact-2026.11.26"
WEIGHTS_ENV = "TAKEDOWN_DETECTOR_WEIGHTS"


class WeightsError(Exception):
    """The weights are missing, damaged or do not match their card; the message says which and what to do."""


@dataclass
class LoadedModel:
    version: str
    net: ArtefactNet
    calibration: Calibration
    threshold: float
    card: dict[str, Any]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(
    net: ArtefactNet, calibration: Calibration, threshold: float, card: dict[str, Any], directory: Path, version: str
) -> Path:
    """Write `<version>.pt`, its sha256 into `<version>.json` and `<version>.md`; return the .pt path."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{version}.pt"
    state = {key: value.detach().cpu().half() for key, value in net.state_dict().items()}
    torch.save(state, weights)
    full = dict(card)
    full.update(
        {
            "version": version,
            "weights": weights.name,
            "sha256": sha256_of(weights),
            "bytes": weights.stat().st_size,
            "architecture": {"name": "ArtefactNet", "width": net.width},
            "calibration": {"a": calibration.a, "b": calibration.b},
            "threshold": threshold,
        }
    )
    (directory / f"{version}.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (directory / f"{version}.sha256").write_text(f"{full['sha256']}  {weights.name}\n", encoding="utf-8")
    (directory / f"{version}.md").write_text(card_markdown(full), encoding="utf-8")
    return weights


def default_weights_path() -> Path:
    override = os.environ.get(WEIGHTS_ENV, "").strip()
    return Path(override) if override else WEIGHTS_DIR / f"{DEFAULT_VERSION}.pt"


def load(path: Path | None = None) -> LoadedModel:
    """Load and verify weights (the default when `path` is None). Raises `WeightsError`."""
    weights = path or default_weights_path()
    card_path = weights.with_suffix(".json")
    if not weights.is_file() or not card_path.is_file():
        raise WeightsError(
            f"Detector weights {weights} or their card {card_path.name} are missing; "
            "run `manage.py train_detector` or restore detection/weights/ from the repository."
        )
    card = json.loads(card_path.read_text(encoding="utf-8"))
    actual = sha256_of(weights)
    if actual != card.get("sha256"):
        raise WeightsError(
            f"Detector weights {weights.name} have sha256 {actual[:12]}…, but their card says "
            f"{str(card.get('sha256'))[:12]}…; the file is damaged or was replaced. Restore it or retrain."
        )
    net = ArtefactNet(width=int(card["architecture"]["width"]))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict({key: value.float() for key, value in state.items()})
    net.eval()
    calibration = Calibration(float(card["calibration"]["a"]), float(card["calibration"]["b"]))
    return LoadedModel(str(card["version"]), net, calibration, float(card.get("threshold", 0.5)), card)


@functools.cache
def default_model() -> LoadedModel:
    """The default model, loaded once per process."""
    return load()


def card_markdown(card: dict[str, Any]) -> str:
    training = card.get("training", {})
    lines = [
        f"# Model card: {card['version']}",
        "",
        f"- Weights: `{card['weights']}`, {card['bytes']:,} bytes, sha256 `{card['sha256']}`",
        f"- Architecture: ArtefactNet (width {card['architecture']['width']}), "
        f"{training.get('parameters', '?'):,} parameters, grey 64 x 64 patches at native resolution"
        if isinstance(training.get("parameters"), int)
        else f"- Architecture: ArtefactNet (width {card['architecture']['width']})",
        f"- Calibration: p = sigmoid({card['calibration']['a']:.3f} * mean patch logit"
        f" + {card['calibration']['b']:.3f})",
        f"- Operating threshold: {card['threshold']:.3f}",
        "",
        "## Training",
        "",
        "```json",
        json.dumps(training, indent=2, sort_keys=True),
        "```",
        "",
        "## Evaluation",
        "",
        "```json",
        json.dumps(card.get("evaluation", {}), indent=2, sort_keys=True),
        "```",
        "",
        "See docs/model-card.md for what these numbers mean and the model's limits.",
        "",
    ]
    return "\n".join(lines)
