"""The layout holds: every module of every app imports on its own, and every job names a registered task."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import detection
import exchange
import hashing
import moderation
from moderation import jobs

ROOT = Path(__file__).resolve().parent.parent


def _modules() -> list[str]:
    names = []
    for package in (moderation, hashing, detection, exchange):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".migrations." not in info.name and not info.name.endswith(".migrations"):
                names.append(info.name)
    return sorted(names)


def test_every_module_of_every_app_imports_in_a_fresh_interpreter() -> None:
    modules = _modules()
    assert len(modules) > 100
    script = ("import django, importlib, sys\ndjango.setup()\nfailed = []\n"
              "for name in sys.argv[1:]:\n"
              "    try:\n        importlib.import_module(name)\n"
              "    except Exception as exc:\n        failed.append(f'{name}: {exc!r}')\n"
              "print('\\n'.join(failed))\nsys.exit(1 if failed else 0)\n")
    done = subprocess.run([sys.executable, "-c", script, *modules], cwd=ROOT, capture_output=True, text=True,
                          env={**_env(), "DJANGO_SETTINGS_MODULE": "tests.settings"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]


@pytest.mark.django_db
def test_every_job_names_a_task_that_autodiscovery_registers() -> None:
    signatures = [jobs.signature(name) for name in jobs.TASK_NAMES]
    app = moderation.celery_app
    assert [s.task for s in signatures] == list(jobs.TASK_NAMES)
    missing = [name for name in jobs.TASK_NAMES if name not in app.tasks]
    assert missing == []
    assert "hashing.match_shard" in app.tasks


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
