"""The StopNCII jobs' checkpoints: one small JSON file (``TAKEDOWN_STOPNCII_STATE_FILE``), replaced
atomically, with a lock per job so two runs of one job never overlap."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings

from exchange.stopncii.errors import StopNCIIError


class StateFile:
    """The jobs' checkpoints as one small JSON file, replaced atomically; a lock keeps two runs apart.

    A page is applied in one transaction and the checkpoint written after it commits: a crash in between
    applies that page again on the next run, which changes nothing (adding an active entry is a no-op).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StopNCIIError(f"The StopNCII checkpoint file {self.path} cannot be read ({exc}). Move it away "
                                "to start over (a fetch then reads everything again, which is safe).") from exc
        return data if isinstance(data, dict) else {}

    def section(self, name: str) -> dict[str, Any]:
        value = self.load().get(name)
        return dict(value) if isinstance(value, dict) else {}

    def save(self, name: str, values: Mapping[str, Any]) -> None:
        data = self.load()
        data[name] = dict(values)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=".stopncii-", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(data, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def locked(self, job: str) -> Iterator[None]:
        """Hold the job's lock; raises :class:`StopNCIIError` when another run holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f"{self.path.name}.{job}.lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StopNCIIError(
                    f"Another StopNCII {job} is running on this machine; wait for it to finish.") from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @classmethod
    def from_settings(cls) -> StateFile:
        return cls(settings.TAKEDOWN_STOPNCII_STATE_FILE)
