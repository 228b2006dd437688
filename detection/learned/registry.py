"""Versioned weights of the artefact model: where they live, how they are checked and loaded.

A version is files side by side: ``<version>.pt`` (a torch state dict: training, evaluation, export),
``<version>.onnx`` (the same network exported for ONNX Runtime: what scoring loads), ``<version>.json``
(its model card: the sha256 of both files, architecture, calibration, how it was trained, its evaluation),
``<version>.sha256`` (both sums, as ``sha256sum -c`` reads them) and ``<version>.md`` (the card for people).
Loading refuses a file whose sha256 differs from the card's. The shipped default lives in
`detection/weights/`; an operator who retrains points ``TAKEDOWN_DETECTOR_WEIGHTS`` at their own ``.pt``
(its ``.onnx`` and card beside it).

Scoring (`load`, `default_model`) runs on ONNX Runtime and never imports torch: web processes and
detection workers stay free of it. torch is imported only inside the functions that train-time tools call
(`save`, `onnx_export`, `load_torch`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detection.learned.patches import Calibration, PatchLogits, mean_logits

if TYPE_CHECKING:
    from detection.learned.network import ArtefactNet

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_VERSION = "artefact-2026.11.26"
WEIGHTS_ENV = "TAKEDOWN_DETECTOR_WEIGHTS"
RESTORE_HINT = "Restore detection/weights/ from the repository, or retrain with `manage.py train_detector`."

_session_threads = 1  # ONNX Runtime intra-op threads per session; TAKEDOWN_DETECTOR_THREADS (detection/apps.py)


class WeightsError(Exception):
    """The weights are missing, damaged or do not match their card; the message says which and what to do."""


class WeightsMissing(WeightsError):
    """A file of the version (weights, ONNX export or card) is not there, or the card does not record it."""


class WeightsMismatch(WeightsError):
    """A file's sha256 differs from the one its card records: damaged or replaced."""


@dataclass
class LoadedModel:
    version: str
    logits: PatchLogits  # ONNX Runtime when scoring (`load`), torch in training and evaluation (`load_torch`)
    calibration: Calibration
    threshold: float
    card: dict[str, Any]

    def mean_logits(self, patch_sets: Sequence[np.ndarray]) -> list[float | None]:
        """The mean patch logit of each image (None where it had no usable patch), in one batched call."""
        return mean_logits(self.logits, patch_sets)


def session_threads_set(count: int) -> None:
    """ONNX Runtime's intra-op threads for sessions loaded from now on (0: one per core)."""
    global _session_threads
    _session_threads = count


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def onnx_path(weights: Path) -> Path:
    """Where a version's ONNX export lies: beside its ``.pt``, same name."""
    return weights.with_suffix(".onnx")


def default_weights_path() -> Path:
    override = os.environ.get(WEIGHTS_ENV, "").strip()
    return Path(override) if override else WEIGHTS_DIR / f"{DEFAULT_VERSION}.pt"


def read_card(weights: Path) -> dict[str, Any]:
    """The model card beside `weights`. Raises `WeightsMissing`."""
    card_path = weights.with_suffix(".json")
    if not card_path.is_file():
        raise WeightsMissing(f"The card {card_path} of detector weights {weights.name} is missing. {RESTORE_HINT}")
    card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
    return card


def _verified(path: Path, expected: object, what: str) -> bytes:
    """The bytes of `path` when their sha256 is `expected` (the card's). Raises `WeightsError`."""
    if not path.is_file():
        raise WeightsMissing(f"Detector {what} {path} is missing. {RESTORE_HINT}")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise WeightsMismatch(
            f"Detector {what} {path.name} has sha256 {actual[:12]}…, but its card says {str(expected)[:12]}…; "
            f"the file is damaged or was replaced. {RESTORE_HINT}"
        )
    return data


def _model(card: dict[str, Any], logits: PatchLogits) -> LoadedModel:
    calibration = Calibration(float(card["calibration"]["a"]), float(card["calibration"]["b"]))
    return LoadedModel(str(card["version"]), logits, calibration, float(card.get("threshold", 0.5)), card)


def load(path: Path | None = None) -> LoadedModel:
    """Load a version for scoring (the default when `path`, its ``.pt``, is None): its ONNX export on ONNX
    Runtime, verified against the card first. No torch. Raises `WeightsError`."""
    weights = path or default_weights_path()
    card = read_card(weights)
    record = card.get("onnx")
    if not isinstance(record, dict) or "sha256" not in record:
        raise WeightsMissing(
            f"The card of detector weights {weights.name} records no ONNX export, which scoring needs; create it "
            f"with `manage.py detector_version export {weights}` (needs the training extra)."
        )
    data = _verified(onnx_path(weights), record["sha256"], "ONNX export")
    from detection.learned import runtime  # ONNX Runtime is mapped by the processes that score, not by every one

    try:
        logits = runtime.OnnxLogits(data, threads=_session_threads)
    except runtime.ModelFormatError as exc:
        raise WeightsMismatch(f"Detector ONNX export {onnx_path(weights).name} cannot be used: {exc}") from exc
    return _model(card, logits)


@functools.cache
def default_model() -> LoadedModel:
    """The default model, loaded once per process."""
    return load()


def load_network(path: Path | None = None) -> tuple[ArtefactNet, dict[str, Any]]:
    """The torch network of a version and its card, the ``.pt`` verified first (torch). Raises `WeightsError`."""
    weights = path or default_weights_path()
    card = read_card(weights)
    return _network(weights, card), card


def _network(weights: Path, card: dict[str, Any]) -> ArtefactNet:
    import torch

    from detection.learned.network import ArtefactNet

    data = _verified(weights, card.get("sha256"), "weights")
    net = ArtefactNet(width=int(card["architecture"]["width"]))
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    net.load_state_dict({key: value.float() for key, value in state.items()})
    return net.eval()


def load_torch(path: Path | None = None, device: str = "cpu") -> LoadedModel:
    """A version as torch runs it, on `device`: for training-time evaluation and for checking the ONNX
    export against it. Raises `WeightsError`."""
    from detection.learned.network import TorchLogits

    net, card = load_network(path)
    return _model(card, TorchLogits(net.to(device), device))


def save(
    net: ArtefactNet, calibration: Calibration, threshold: float, card: dict[str, Any], directory: Path, version: str
) -> Path:
    """Write `<version>.pt` and its ONNX export, their sha256 into `<version>.json`, `<version>.sha256`
    and `<version>.md`; return the .pt path. Raises `detection.learned.export.ExportError` when the
    export cannot be made (the training extra missing) or does not agree with torch."""
    import torch

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
    _export_beside(weights, full)
    return weights


def onnx_export(weights: Path) -> dict[str, Any]:
    """(Re-)create the ONNX export of a version saved without one, and record it in its card. Returns the
    card's record of it. Raises `WeightsError`, or `ExportError` as `save` does."""
    card = read_card(weights)
    _export_beside(weights, card)
    record: dict[str, Any] = card["onnx"]
    return record


def _export_beside(weights: Path, card: dict[str, Any]) -> None:
    """Export the network as `load_torch` reads it back from `weights` (float16 weights widened again, not
    the float32 ones training ended with, so both runtimes score the same network), then write the card."""
    from detection.learned.export import export_onnx

    card["onnx"] = export_onnx(_network(weights, card), onnx_path(weights))
    directory, version = weights.parent, weights.stem
    (directory / f"{version}.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (directory / f"{version}.sha256").write_text(
        f"{card['sha256']}  {weights.name}\n{card['onnx']['sha256']}  {card['onnx']['file']}\n", encoding="utf-8"
    )
    (directory / f"{version}.md").write_text(card_markdown(card), encoding="utf-8")


def card_markdown(card: dict[str, Any]) -> str:
    training = card.get("training", {})
    lines = [
        f"# Model card: {card['version']}",
        "",
        f"- Weights: `{card['weights']}`, {card['bytes']:,} bytes, sha256 `{card['sha256']}`",
        *_onnx_line(card.get("onnx")),
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


def _onnx_line(record: Any) -> list[str]:
    if not isinstance(record, dict):
        return []
    return [
        f"- ONNX export (what scoring runs, on ONNX Runtime): `{record['file']}`, {record['bytes']:,} bytes, "
        f"sha256 `{record['sha256']}`, opset {record['opset']}; {record['exporter']}; largest logit difference "
        f"from torch on {record['check']['patches']} patches: {record['check']['max_abs_logit_difference']:.1e}"
    ]
