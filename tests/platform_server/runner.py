"""Starts the loopback platform (``tests.platform_server.app``) as its own gunicorn process and stops it.

One worker with 8 threads: the ``fail_first`` counters, removals and the log live in that worker's memory.
It binds 127.0.0.2 (the whole of 127.0.0.0/8 is loopback on Linux), so that a test can allow exactly
127.0.0.2/32 to Takedown's fetcher and show that a redirect to 127.0.0.1 (``localhost``) is refused.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.2"
APPLICATION = "tests.platform_server.app:application"


def new_secret() -> str:
    """A Standard Webhooks secret, as docs/webhooks.md makes one: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def free_port(host: str = HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def gunicorn_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", "1", "--threads", "8",
            "--worker-class", "gthread", "--graceful-timeout", "2", "--timeout", "120", "--keep-alive", "2",
            "--log-level", "warning", APPLICATION]


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_file: Path

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def output(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGQUIT (gunicorn's quick shutdown) to the whole process group (its arbiter and worker), SIGKILL after
        5 s; no leftovers."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGQUIT)
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
            except ProcessLookupError:
                pass
        # A worker orphaned by a dying arbiter is still in the group: make sure it is gone too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run(state_file: Path, *, secret: str, host: str = HOST, port: int | None = None, auth: str = "signature",
        token: str | None = None, media_base: str | None = None, log_file: Path | None = None,
        ready_timeout: float = 30.0) -> ServerProcess:
    """Starts the platform on ``host:port`` (a free port when None) and returns once it answers."""
    port = port or free_port(host)
    log_file = log_file or state_file.with_suffix(".log")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PLATFORM_SERVER_STATE": str(state_file),
           "PLATFORM_SERVER_SECRET": secret, "PLATFORM_SERVER_AUTH": auth}
    for name, value in (("PLATFORM_SERVER_TOKEN", token), ("PLATFORM_SERVER_MEDIA_BASE", media_base)):
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    with log_file.open("wb") as out:
        process = subprocess.Popen(gunicorn_command(host, port), cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = ServerProcess(process=process, host=host, port=port, log_file=log_file)
    try:
        _wait_ready(server, ready_timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the loopback platform exited ({server.process.returncode}):\n{server.output()}")
        try:
            answer = httpx.get(f"{server.base_url}/_test/state", timeout=1.0, trust_env=False)
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        if answer.status_code == 200:
            return
        raise RuntimeError(f"the loopback platform answered {answer.status_code}: {answer.text[:500]}")
    raise RuntimeError(f"the loopback platform did not answer within {timeout:.0f} s:\n{server.output()}")
