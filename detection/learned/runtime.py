"""The artefact network on ONNX Runtime: how web processes and detection workers score, without torch.

`detection.learned.registry.load` verifies an exported ``<version>.onnx`` against its card and hands its
bytes here; the session is built from those same bytes, so what was checked is what runs. The network's
input is the patches of `detection.learned.patches`, exactly as torch reads them in training.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

INPUT = "patches"  # float32 (n, 1, 64, 64): normalised grey patches
OUTPUT = "logits"  # float32 (n,): one logit per patch
OPSET = 17  # the ONNX opset of the export (detection.learned.export)


class ModelFormatError(Exception):
    """The bytes are not an ONNX model of the artefact network (wrong file, other inputs, or unreadable)."""


class OnnxLogits:
    """An ONNX export of the artefact network as a `detection.learned.patches.PatchLogits`.

    `threads` is ONNX Runtime's intra-op thread count (0: one per core, its default). A web process or a
    prefork worker runs one request or task at a time on cores it shares with its siblings, so 1 (the
    ``TAKEDOWN_DETECTOR_THREADS`` default): an image's 16 patches take a few milliseconds on one thread, and
    more threads spinning for work would only take CPU from the other processes.
    """

    def __init__(self, model: bytes, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only; they are raised as exceptions anyway
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own (Fail, InvalidGraph, ...) for unreadable bytes
            raise ModelFormatError(f"ONNX Runtime cannot read it ({type(exc).__name__}: {exc})") from exc
        inputs = [item.name for item in self.session.get_inputs()]
        outputs = [item.name for item in self.session.get_outputs()]
        if inputs != [INPUT] or OUTPUT not in outputs:
            raise ModelFormatError(f"it has inputs {inputs} and outputs {outputs}, not [{INPUT!r}] and {OUTPUT!r}")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(logits)
