"""Synthetic-media signals: each looks at one kind of evidence and returns a `Signal`."""

from detection.signals.base import Signal, SignalFunction
from detection.signals.metadata import metadata_signal

__all__ = ["Signal", "SignalFunction", "metadata_signal"]
