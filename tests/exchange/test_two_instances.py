# ruff: noqa: S310 - every URL here is http://127.0.0.1
"""Two Takedown instances on loopback (two gunicorn processes, two SQLite databases): B pulls A.

A confirmed takedown on A blocks the same upload on B after one sync; a withdrawal on A stops the match on B
after the next; a tampered page is refused; a sync killed mid-run resumes exactly.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from exchange.signing import generate_private_key_pem, verify
from tests.conftest import notice_payload

pytestmark = [pytest.mark.instances, pytest.mark.own_databases]
ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
EXTRA_HASHES = 9  # beside the takedown's own 3: enough pages of 2 for the interruption


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Instance:
    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root = name, root / name
        self.root.mkdir()
        self.key_file = self.root / "signing.pem"
        self.key_file.write_bytes(generate_private_key_pem())
        self.db = self.root / "takedown.sqlite3"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "TAKEDOWN_"))},
                    "DJANGO_SETTINGS_MODULE": "moderation.settings", "DATABASE_URL": f"sqlite:///{self.db}",
                    "SECRET_KEY": f"two-instances-{name}-{uuid.uuid4().hex}", "TAKEDOWN_VAR_DIR": str(self.root),
                    "TAKEDOWN_MEDIA_ROOT": str(self.root / "media"), "CELERY_BROKER_URL": "",
                    "TAKEDOWN_MEDIA_KEYS": "test-1:dGVzdHMtb25seS1tZWRpYS1rZXktMzItYnl0ZXMhISE=",
                    "TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE": str(self.key_file), "LOG_LEVEL": "WARNING",
                    "TAKEDOWN_RATE_REPORTS_PER_HOUR": "1000", "TAKEDOWN_RATE_LOOKUPS_PER_HOUR": "1000"}
        self.server: subprocess.Popen[bytes] | None = None

    @property
    def public_key(self) -> str:
        from cryptography.hazmat.primitives import serialization

        from exchange.signing import public_key_b64

        key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        return public_key_b64(key.public_key())  # type: ignore[arg-type]

    def manage(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def setup(self, call: str) -> dict[str, Any]:
        done = self.manage("shell", "-c", f"import tests.exchange.instance_setup as s; s.{call}")
        assert done.returncode == 0, done.stderr[-2000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def start(self) -> None:
        log = open(self.root / "server.log", "wb")
        self.server = subprocess.Popen([GUNICORN, "moderation.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                                        "--workers", "1", "--threads", "4", "--timeout", "60"],
                                       cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.server is not None and self.server.poll() is None, (self.root / "server.log").read_text()
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"instance {self.name} did not start")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def bank(self, name: str) -> dict[tuple[str, str], str]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT e.algorithm, e.value, e.status FROM hashing_bankentry e "
                              "JOIN hashing_bank b ON b.id = e.bank_id WHERE b.name = ?", (name,)).fetchall()
        return {(a, v): s for a, v, s in rows}

    def changes_per_entry(self, bank: str) -> list[int]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            return [n for (n,) in db.execute(
                "SELECT COUNT(c.id) FROM hashing_bankentry e JOIN hashing_bank b ON b.id = e.bank_id "
                "LEFT JOIN hashing_bankchange c ON c.entry_id = e.id WHERE b.name = ? GROUP BY e.id", (bank,))]

    def audited(self, action: str) -> int:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            row = db.execute("SELECT COUNT(*) FROM moderation_auditevent WHERE action = ?", (action,)).fetchone()
        return int(row[0])


def call(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scan(instance: Instance, platform_key: str, image: bytes) -> str:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.jpg\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    status, answer = call("POST", instance.url + "/api/v1/scan", body, {
        "Authorization": f"Api-Key {platform_key}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, answer[:500]
    return str(json.loads(answer)["verdict"])


def withdraw_on_status_page(instance: Instance, case_number: str, pin: str) -> None:
    """What the person does: look the case up with its number and PIN, tick the box, withdraw."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(instance.url + "/status/", timeout=30).read()
    token = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "case_number": case_number, "pin": pin}).encode()
    opener.open(instance.url + "/status/", form, timeout=30).read()
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "confirm": "on"}).encode()
    with opener.open(instance.url + "/status/withdraw", form, timeout=30) as answer:
        assert answer.status == 200


class Proxy:
    """A loopback proxy in front of A: under /tamper it alters every page; under /paged, once it has forwarded
    ``records_before_hang`` records, it holds the next request open (so the sync can be killed mid-run)."""

    def __init__(self, upstream: str) -> None:
        proxy = self
        self.upstream, self.records_before_hang, self.paged_records = upstream, -1, 0
        self.hanging = threading.Event()
        self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                mode, _, rest = self.path.lstrip("/").partition("/")
                if mode == "paged" and 0 <= proxy.records_before_hang <= proxy.paged_records:
                    proxy.hanging.set()
                    proxy.release.wait(30)
                    return
                request = urllib.request.Request(proxy.upstream + "/" + rest, headers=dict(self.headers))
                with urllib.request.urlopen(request, timeout=30) as answer:
                    body, signature = answer.read(), answer.headers["X-Takedown-Signature"]
                if mode == "paged":
                    proxy.paged_records += len(json.loads(body)["records"])
                if mode == "tamper":
                    body = body.replace(b'"withdrawn"', b'"active"').replace(b'"md5"', b'"md5" ')
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Takedown-Signature", signature)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    if not Path(GUNICORN).exists():
        pytest.fail("gunicorn is not installed in the virtualenv (it is a main dependency: pip install -e .)")
    a, b = Instance("a", tmp_path), Instance("b", tmp_path)
    try:
        migrated = a.manage("migrate", "--noinput", timeout=180)
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        shutil.copyfile(a.db, b.db)  # the same schema; separate databases from here on
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_two_instances_share_withdraw_refuse_tampering_and_resume_exactly(instances: tuple[Instance, Instance]) -> None:
    a, b = instances
    proxy = Proxy(a.url)
    try:
        setup_a = a.setup(f"setup_a({EXTRA_HASHES}, {b.public_key!r})")
        key_file = b.root / "key-from-a"
        key_file.write_text(setup_a["key"])
        remotes = f"alpha={a.url},alpha-tampered={proxy.url}/tamper,alpha-paged={proxy.url}/paged"
        setup_b = b.setup(f"setup_b({str(key_file)!r}, {a.public_key!r}, {remotes!r})")
        a.wait_ready()
        b.wait_ready()

        # A confirmed takedown on A: report, claim, decide through A's API.
        status, image = call("GET", a.url + "/demo/content/7/file")
        assert status == 200
        assert b.bank("from-alpha") == {}
        status, created = call("POST", a.url + "/api/v1/reports",
                               json.dumps(notice_payload(locations=["demo://content/7"])).encode(),
                               {"Content-Type": "application/json"})
        assert status == 201, created
        case_number = json.loads(created)["case_number"]
        moderator = {"Authorization": f"Token {setup_a['token']}", "Content-Type": "application/json"}
        status, queue = call("GET", a.url + "/api/v1/queue", headers=moderator)
        task_id = json.loads(queue)["results"][0]["id"]
        assert call("POST", f"{a.url}/api/v1/queue/{task_id}/claim", b"{}", moderator)[0] == 200
        status, decided = call("POST", f"{a.url}/api/v1/queue/{task_id}/decide",
                               json.dumps({"decision": "takedown", "reason": "synthetic_ncii"}).encode(), moderator)
        assert status == 200, decided
        shared = a.bank("confirmed-takedowns")
        assert len(shared) == EXTRA_HASHES + 3

        # One sync: "alpha" blocks the upload on B; the tampered copy is refused and audited. At the same time
        # "alpha-paged" (pages of two changes) is killed while it waits for a page, after 4 records came.
        proxy.records_before_hang = 4
        killed = subprocess.Popen([PYTHON, "manage.py", "sync_partners", "--remote", "alpha-paged"], cwd=ROOT,
                                  env=b.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            first = b.manage("sync_partners", "--remote", "alpha", "--remote", "alpha-tampered")
            assert proxy.hanging.wait(60), "the paged sync never got 4 records"
            killed.send_signal(signal.SIGKILL)
            killed.wait(10)
        finally:
            if killed.poll() is None:
                killed.kill()
        assert first.returncode != 0 and "alpha-tampered" in first.stderr and "signature" in first.stderr
        assert b.bank("from-alpha") == shared
        assert b.bank("from-alpha-tampered") == {}
        assert b.audited("exchange.signature_rejected") == 1
        assert scan(b, setup_b["platform_key"], image) == "block"
        # Every page it got was committed with its checkpoint; the rest is still to come.
        assert 4 <= len(b.bank("from-alpha-paged")) < len(shared)

        # The person withdraws on A's status page; after the next sync the upload no longer blocks on B, and the
        # killed sync resumes from its checkpoint to exactly A's state, each entry changed once per state.
        withdraw_on_status_page(a, case_number, json.loads(created)["pin"])
        proxy.records_before_hang = -1
        second = b.manage("sync_partners", "--remote", "alpha", "--remote", "alpha-paged")
        assert second.returncode == 0, second.stderr
        now_on_a = a.bank("confirmed-takedowns")
        assert sorted(now_on_a.values()).count("withdrawn") == 3
        assert b.bank("from-alpha") == now_on_a
        assert b.bank("from-alpha-paged") == now_on_a
        assert max(b.changes_per_entry("from-alpha-paged")) <= 2  # added once, withdrawn at most once
        assert scan(b, setup_b["platform_key"], image) != "block"

        # A's feed, read directly, verifies against A's public key.
        feed = urllib.request.Request(a.url + "/api/v1/exchange/hashes?limit=100",
                                      headers={"Authorization": f"Api-Key {setup_a['key']}"})
        with urllib.request.urlopen(feed, timeout=30) as answer:
            assert verify(answer.read(), answer.headers["X-Takedown-Signature"], [a.public_key])
    finally:
        proxy.close()
