"""Fault: PostgreSQL restarted under load. The app (gunicorn, the real settings) runs on our own PostgreSQL
instance while a client streams report submissions; the instance is stopped and started again.

During the outage the API answers 503 with Retry-After and the API's error shape, never 500; afterwards it
recovers by itself (CONN_HEALTH_CHECKS), and every report acknowledged with 201 is in the database.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from moderation.db_unavailable import DETAIL
from tests.conftest import notice_payload
from tests.faults.services import (
    ROOT,
    app_env,
    free_port,
    migrate,
    need_binary,
    postgres_instance,
    redis_server,
    wait_for,
)


@dataclass
class Answer:
    status: int
    body: dict[str, object]
    retry_after: str | None


@dataclass
class Stream:
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def post_report(base: str, n: int) -> Answer:
    data = json.dumps(notice_payload(locations=[f"demo://content/{n}"])).encode()
    request = urllib.request.Request(f"{base}/api/v1/reports", data=data, method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return Answer(response.status, json.loads(response.read()), response.headers.get("Retry-After"))
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"raw": raw[:200].decode(errors="replace")}
        return Answer(exc.code, body, exc.headers.get("Retry-After"))


def answers_201(base: str, server: subprocess.Popen[bytes]) -> bool:
    if server.poll() is not None:
        raise AssertionError("gunicorn exited")
    try:
        return post_report(base, 10_000).status == 201
    except (urllib.error.URLError, OSError):
        return False  # not listening yet


def keep_posting(base: str, stream: Stream, offset: int) -> None:
    n = offset
    while not stream.stop.is_set():
        stream.answers.append(post_report(base, n))
        n += 2


@pytest.mark.postgres
@pytest.mark.own_databases
def test_a_postgres_restart_under_load_gives_503s_then_recovers_and_loses_no_acknowledged_report(
        tmp_path: Path) -> None:
    need_binary("gunicorn", Path(sys.executable).parent)
    with postgres_instance() as pg, redis_server() as broker:
        subprocess.run([pg.pg_ctl.replace("pg_ctl", "createdb"), "-h", "127.0.0.1", "-p", str(pg.port),
                        "-U", "postgres", "takedown"], check=True, timeout=60)
        url = pg.url("takedown")
        migrate(url)
        port = free_port()
        log = tmp_path / "gunicorn.log"
        # No worker: the processing tasks wait on the broker; this test is about the web tier.
        env = app_env(url, CELERY_BROKER_URL=broker.url, DB_CONN_MAX_AGE="60",
                      # One client address sends every report here; the per-address limits are tested elsewhere.
                      TAKEDOWN_RATE_REPORTS_PER_HOUR="1000000000",
                      EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
        with log.open("w") as out:
            server = subprocess.Popen(
                [str(Path(sys.executable).parent / "gunicorn"), "moderation.wsgi:application", "--bind",
                 f"127.0.0.1:{port}", "--workers", "2", "--timeout", "60", "--graceful-timeout", "5"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        stream = Stream()
        clients = [threading.Thread(target=keep_posting, args=(base, stream, i), daemon=True) for i in (0, 1)]
        try:
            try:
                wait_for(lambda: answers_201(base, server), "gunicorn to answer", timeout=90, every=0.5)
            except AssertionError:
                print(log.read_text()[-3000:])
                raise
            for client in clients:
                client.start()
            wait_for(lambda: sum(a.status == 201 for a in stream.answers) >= 10, "submissions before the fault")

            pg.stop()  # fast shutdown: open transactions are rolled back, connections cut
            during = [post_report(base, 20_000 + i) for i in range(5)]
            time.sleep(0.5)
            pg.start()
            wait_for(lambda: post_report(base, 30_000).status == 201, "the API to recover by itself", timeout=60)
            recovered_at = len(stream.answers)
            wait_for(lambda: sum(a.status == 201 for a in stream.answers[recovered_at:]) >= 10,
                     "submissions after the restart")
        finally:
            stream.stop.set()
            for client in clients:
                if client.is_alive():
                    client.join(timeout=40)
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

        for answer in during:
            assert answer.status == 503, answer
            assert answer.retry_after is not None and int(answer.retry_after) > 0
            assert set(answer.body) == {"detail"} and "try again" in str(answer.body["detail"])
        statuses = {a.status for a in stream.answers}
        assert statuses <= {201, 503}, [a for a in stream.answers if a.status not in (201, 503)][:3]
        assert all(a.retry_after for a in stream.answers if a.status == 503)
        acknowledged = {str(a.body["case_number"]) for a in stream.answers if a.status == 201}
        with psycopg.connect(url) as conn:
            stored = {row[0] for row in conn.execute("SELECT case_number FROM moderation_report")}
        assert acknowledged and acknowledged <= stored, f"lost: {sorted(acknowledged - stored)[:5]}"
        assert "Traceback" not in log.read_text()


def test_a_database_error_raised_outside_a_view_also_answers_503_and_other_errors_stay_500(rf: Any) -> None:
    """``handler500`` sees the exception Django is handling: a database error in a middleware (a session
    save, say) gets the same 503; any other error keeps the plain 500 page."""
    from django.db import OperationalError

    from moderation.db_unavailable import server_error

    try:
        raise OperationalError("could not connect to server: Connection refused")
    except OperationalError:
        response = server_error(rf.get("/api/v1/reports"))
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert json.loads(response.content) == {"detail": DETAIL}
    try:
        raise ValueError("a bug")
    except ValueError:
        assert server_error(rf.get("/status/")).status_code == 500
