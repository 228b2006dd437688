"""Shared loop for commands that print one JSON object per input file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class Writer(Protocol):
    def write(self, msg: str, /) -> Any: ...


def run_per_path(paths: list[str], compute: Callable[[bytes], dict[str, Any]], out: Writer,
                 errors: tuple[type[Exception], ...]) -> int:
    """Print ``{"path": ..., **compute(bytes)}`` per path; a bad file prints ``{"path", "error"}``
    and the loop goes on. Returns how many files failed."""
    failures = 0
    for path in paths:
        try:
            data = Path(path).read_bytes()
            line: dict[str, Any] = {"path": path, **compute(data)}
        except OSError as exc:
            failures += 1
            line = {"path": path, "error": f"cannot read the file: {exc.strerror or exc}"}
        except errors as exc:
            failures += 1
            line = {"path": path, "error": str(exc)}
        out.write(json.dumps(line) + "\n")
    return failures
