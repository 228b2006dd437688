"""``manage.py atproto_scan`` as its own process, killed with SIGKILL mid-stream and started again: no event missed,
none processed twice in effect (one case per matching post), the cursor resumed where the killed process left it.

The scanner process shares the test database (a file or a PostgreSQL database, committed data:
``transaction=True``), as tests/e2e/test_celery_worker.py's worker does.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from django.conf import settings
from django.db import connection

from hashing.models import Bank
from moderation.models import Report, ScannerFinding, StreamCursor
from moderation.services.atproto_scan import firehose_name
from tests.atproto.network import AtprotoNetwork
from tests.atproto.test_firehose_scanner import banked, head_seq, picture, reencoded, stream_url, wait_for

pytestmark = [pytest.mark.atproto, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [91101, 91102, 91103, 91104, 91105, 91106, 91107, 91108]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if db["NAME"].startswith(("file:memorydb", ":memory:")):
        pytest.fail("the SQLite test database must be a file for the scanner process to share it")
    return f"sqlite:///{db['NAME']}"


def scanner_env(network: AtprotoNetwork, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "moderation.settings", "DATABASE_URL": _database_url(),
           "SECRET_KEY": settings.SECRET_KEY, "TAKEDOWN_MEDIA_ROOT": str(settings.MEDIA_ROOT), "DB_CONN_MAX_AGE": "0",
           "CELERY_TASK_ALWAYS_EAGER": "1", "TAKEDOWN_ATPROTO_FIREHOSE_URL": stream_url(network), **extra}
    env.pop("CELERY_BROKER_URL", None)
    for name, value in network.takedown_settings().items():
        env[name] = ",".join(value) if isinstance(value, list) else str(value)
    return env


class ScannerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log: IO[str] = log.open("w")
        self.process = subprocess.Popen([sys.executable, "manage.py", "atproto_scan"], cwd=ROOT, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text()

    def end(self, sig: int) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code


@pytest.fixture
def processes() -> Iterator[list[ScannerProcess]]:
    started: list[ScannerProcess] = []
    yield started
    for one in started:
        one.end(signal.SIGKILL)


def findings(uris: list[str]) -> dict[str, int]:
    return {uri: ScannerFinding.objects.filter(uri=uri).count() for uri in uris}


def test_the_scanner_killed_mid_stream_resumes_from_its_cursor_with_nothing_missed_or_done_twice(
        atproto_settings: AtprotoNetwork, tmp_path: Path, processes: list[ScannerProcess]) -> None:
    network = atproto_settings
    banked("confirmed-kill-test", SEEDS, Bank.OnStreamMatch.CASE)
    name = firehose_name(stream_url(network))
    head = head_seq(network)
    StreamCursor.objects.update_or_create(name=name, defaults={"value": str(head)})
    alice, bob = network.create_account(), network.create_account()
    before = [alice.post(f"picture {n}", [reencoded(seed)]) for n, seed in enumerate(SEEDS[:5])]
    plain = [bob.post("nothing to see", [picture(91199)]), bob.post("words only")]

    # The first process saves its cursor after its first event and then not for an hour, so the SIGKILL leaves
    # events after the cursor that it had already processed: the next process must meet them again harmlessly.
    first = ScannerProcess(scanner_env(network, TAKEDOWN_ATPROTO_SCAN_CURSOR_SAVE_SECONDS="3600"),
                           tmp_path / "first.log")
    processes.append(first)
    wait_for(lambda: sum(findings([p.uri for p in before]).values()) >= 2 or first.process.poll() is not None,
             "the first scanner to open two cases", timeout=90)
    assert first.process.poll() is None, first.output()
    assert first.end(signal.SIGKILL) == -signal.SIGKILL
    cursor_after_kill = int(StreamCursor.objects.get(name=name).value)
    found_before_kill = sum(1 for count in findings([p.uri for p in before]).values() if count)
    assert cursor_after_kill > head  # the killed process had saved its own progress

    during = [alice.post(f"picture {n}", [reencoded(seed)]) for n, seed in enumerate(SEEDS[5:], start=5)]
    second = ScannerProcess(scanner_env(network), tmp_path / "second.log")
    processes.append(second)
    matching = [p.uri for p in before + during]
    wait_for(lambda: all(findings(matching).values()) or second.process.poll() is not None,
             "the second scanner to catch up", timeout=120)
    last_seq = head_seq(network)
    wait_for(lambda: int(StreamCursor.objects.get(name=name).value) >= last_seq, "the cursor to reach the end")
    assert second.end(signal.SIGTERM) == 0, second.output()

    assert findings(matching) == dict.fromkeys(matching, 1)  # every post found, each once
    for uri in matching:
        assert Report.objects.filter(items__location=uri, source=Report.Source.SCANNER).distinct().count() == 1
    assert not ScannerFinding.objects.filter(uri__in=[p.uri for p in plain]).exists()
    output = second.output()
    assert f"scanning from cursor {cursor_after_kill}" in output
    replayed = int(re.search(r"(\d+) already handled", output).group(1))  # type: ignore[union-attr]
    assert replayed >= found_before_kill >= 2  # met again after the cursor, and nothing opened twice
    assert int(StreamCursor.objects.get(name=name).value) >= last_seq
