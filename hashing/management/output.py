"""Output helpers shared by management commands."""

from __future__ import annotations

from typing import Any


class Unended:
    """A command's output wrapper as a plain stream (no line ending added), for csv writers and tqdm."""

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, ending="")

    def flush(self) -> None:
        self._wrapper.flush()
