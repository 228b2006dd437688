"""Synthetic-media signals: each looks at one kind of evidence and returns a `Signal`."""

from detection.signals.base import Signal, SignalFunction
from detection.signals.c2pa_manifest import c2pa_signal
from detection.signals.faces import faces_signal
from detection.signals.metadata import metadata_signal
from detection.signals.model import model_signal
from detection.signals.watermark import watermark_signal

__all__ = [
    "Signal",
    "SignalFunction",
    "c2pa_signal",
    "faces_signal",
    "metadata_signal",
    "model_signal",
    "watermark_signal",
]
