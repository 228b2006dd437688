"""Our own Redis and PostgreSQL instances, on free loopback ports, for tests that stop and restart them.

The machine's PostgreSQL (5432) and Redis (6379) are shared by every test run and are never stopped here.
A missing binary skips the test on a developer's machine and fails it in CI (TAKEDOWN_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

PG_BIN = Path(os.environ.get("TAKEDOWN_PG_BIN", "/usr/lib/postgresql/15/bin"))
ROOT = Path(__file__).resolve().parents[2]


def missing(message: str) -> None:
    """Fail in CI, skip elsewhere."""
    if settings.TAKEDOWN_REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def need_binary(name: str, directory: Path | None = None) -> str:
    path = str(directory / name) if directory else shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        missing(f"{name} is not installed{f' in {directory}' if directory else ''}; the fault tests need it")
    assert path
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """``redis-server`` on a free port, no persistence; ``stop()`` and ``start()`` again on the same port."""

    def __init__(self) -> None:
        self.binary = need_binary("redis-server")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), f"redis-server on port {self.port}", timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PostgresInstance:
    """A throwaway PostgreSQL cluster (initdb) in a temporary folder owned by ``postgres``, trust auth."""

    def __init__(self) -> None:
        self.initdb = need_binary("initdb", PG_BIN)
        self.pg_ctl = need_binary("pg_ctl", PG_BIN)
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="takedown-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *args: str, timeout: float = 120) -> None:
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *args]
        else:
            command = list(args)
        subprocess.run(command, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                          "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = "
                       f"'{self.folder}'\nfsync = off\nmax_connections = 60\n")

    def pg(self, action: str, *extra: str) -> None:
        self._as_postgres(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", action,
                          *extra)

    def start(self) -> None:
        self.pg("start")

    def stop(self) -> None:
        self.pg("stop", "-m", "fast")

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.pg("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def postgres_instance() -> Iterator[PostgresInstance]:
    if not shutil.which("runuser") and os.geteuid() == 0:
        missing("runuser is needed to run initdb as the postgres user")
    instance = PostgresInstance()
    try:
        instance.create()
        instance.start()
        yield instance
    finally:
        instance.destroy()


def migrate(database_url: str, *, env: dict[str, str] | None = None) -> None:
    """Create the schema in a database with ``manage.py migrate`` in a subprocess (the real settings)."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                   cwd=ROOT, check=True, timeout=300, env={**app_env(database_url), **(env or {})})


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """Environment for a subprocess of the real app (moderation.settings) on the given database."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "moderation.settings", "DATABASE_URL": database_url,
           "SECRET_KEY": settings.SECRET_KEY, "TAKEDOWN_MEDIA_ROOT": str(settings.MEDIA_ROOT),
           "LOG_LEVEL": "WARNING", **extra}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    if "CELERY_BROKER_URL" not in extra:
        env.pop("CELERY_BROKER_URL", None)  # no broker named: the subprocess runs tasks eagerly
    return env
