"""Exporting the torch network to ONNX, the file scoring loads (training-time only: torch and ``onnx``).

The exporter is torch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``): it runs offline
on a CPU-only torch and needs only the ``onnx`` package (the ``train`` extra), where the newer
``torch.export``-based one also needs ``onnxscript``. Every export is checked at once: the same patches go
through torch and through ONNX Runtime, and the export is refused if any logit differs by more than
`AGREEMENT`.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detection.learned.network import ArtefactNet, TorchLogits
from detection.learned.patches import PATCH
from detection.learned.runtime import INPUT, OPSET, OUTPUT, OnnxLogits

AGREEMENT = 1e-4  # largest difference allowed between a torch logit and the ONNX Runtime one
CHECK_PATCHES = 256  # patches the check sends through both
INSTALL_HINT = "pip install -e '.[train]'"


class ExportError(Exception):
    """The network could not be exported, or the export does not score as the torch network does."""


def missing_requirement() -> str | None:
    """Why an export cannot run here (a sentence saying what to install), or None when it can."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return (
            "Exporting the model for ONNX Runtime needs the `onnx` package, which is a training dependency "
            f"and not installed here; install the training extra ({INSTALL_HINT}) and run again."
        )
    return None


def export_onnx(net: ArtefactNet, path: Path, seed: int = 0) -> dict[str, Any]:
    """Write `net` as ONNX to `path`, check it against torch, and return the card's record of it."""
    reason = missing_requirement()
    if reason:
        raise ExportError(reason)
    import onnx

    net = net.to("cpu").eval()
    example = torch.zeros(2, 1, PATCH, PATCH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation on every call
        torch.onnx.export(
            net,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "n"}, OUTPUT: {0: "n"}},
            do_constant_folding=True,
        )
    data = path.read_bytes()
    # Normalised patches are zero-mean, unit-contrast: standard normal noise covers their range.
    batch = np.random.default_rng(seed).standard_normal((CHECK_PATCHES, 1, PATCH, PATCH)).astype(np.float32)
    difference = float(np.abs(TorchLogits(net)(batch) - OnnxLogits(data)(batch)).max())
    if not difference <= AGREEMENT:
        path.unlink()
        raise ExportError(
            f"The ONNX export differs from the torch network by up to {difference:.2e} in a logit "
            f"(allowed {AGREEMENT:.0e}); it was not kept."
        )
    return {
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "opset": OPSET,
        "exporter": f"torch.onnx.export, TorchScript-based (dynamo=False); torch {torch.__version__}, "
        f"onnx {onnx.__version__}",
        "check": {"patches": CHECK_PATCHES, "max_abs_logit_difference": float(f"{difference:.3g}")},
    }
