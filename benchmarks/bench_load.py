"""Load on loopback: gunicorn + PostgreSQL + Redis + a Celery worker, driven by a lean asyncio HTTP client.

    .venv/bin/python benchmarks/bench_load.py                  # closed loop, the full run (about 4-5 minutes)
    .venv/bin/python benchmarks/bench_load.py --quick          # levels 1,10 only, fewer requests
    .venv/bin/python benchmarks/bench_load.py --open-loop scan=100,report=50 --baseline-ref c5153c7
                                                               # open loop: Poisson arrivals at fixed rates,
                                                               # this tree and the code at REF (about 5 minutes)

**Open loop** (``--open-loop``), as a platform's traffic is: requests arrive at random (a Poisson process) at a
fixed rate whether or not earlier ones have been answered; each arrival takes an idle keep-alive connection or
opens one (at most ``--max-open`` requests in flight; past that an arrival counts as an error). Latency is
measured from the moment the request was due, so a server that falls behind pays for the queue it builds
(no coordinated omission). Each endpoint runs for ``--duration`` seconds after a short warm-up. The same
run then does the same against the code at ``--baseline-ref`` (a git worktree of that commit, its own fresh
database, Celery worker and gunicorn, the same virtualenv), and prints both, with the CPU per request by
process group and the count check (submitted = stored = processed) for each tree.

Closed loop (the default) is described below.

What it starts, all on 127.0.0.1 and all stopped at the end:
- a fresh database ``takedown_bench_<pid>`` on the PostgreSQL server at ``--server`` (default the machine's
  127.0.0.1:5432), migrated, with the demo data (``seed_demo``) and a platform API key; dropped afterwards;
- its own ``redis-server`` on a free port (the broker);
- ``celery worker`` processes (``--celery-concurrency``) on the default and detection queues, at a lower CPU
  priority (``--celery-nice``, 19: ``nice`` and, where the kernel groups processes by session, the session's
  autogroup niceness), as docs/operations.md advises for workers beside the web processes;
- **ours**: gunicorn, ``--workers`` sync workers (default 4);
- **baseline "gunicorn 1 sync worker"**: the same app and endpoints served by one sync worker, as a
  default ``gunicorn moderation.wsgi`` starts it.

For each server it sends, at each concurrency level (closed loop: each client keeps one request open and
sends the next as soon as the answer comes, so p95 >= clients / throughput):
- ``POST /api/v1/reports`` (JSON; one location each: every 4th a demo platform item, the others links the
  demo platform does not host, which become "unprocessable" items a moderator sees);
- ``POST /api/v1/scan`` (multipart, a 1000x1000 JPEG = 1.0 MP; a picture never sent before on every scan,
  so every scan is hashed, matched, stored encrypted for the detection worker and queued).

Each level is bounded by ``--requests`` and ``--level-seconds``. It prints throughput, p50/p95/p99 and the
errors (any answer other than 201/200, or no answer); the CPU each group of processes (gunicorn, Celery,
PostgreSQL, Redis, this client) spent per request during each level, read from /proc; the target levels
again with clients pausing ``--think-seconds`` between requests; the targets; the count check
submitted = stored = processed (after waiting for the worker to drain; processed = the case's review task
was triaged, the pipeline's last step); and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGETS = {"scan": (20, 100.0), "report": (50, 200.0)}  # endpoint: (clients, p95 ms)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port} after {timeout:.0f} s")


def picture(seed: int, size: tuple[int, int] = (1000, 1000)) -> bytes:
    """A smooth random picture (blobs of colour): safe for work by construction."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small, "RGB").resize(size, Image.Resampling.BICUBIC).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


CPU_GROUPS = ("gunicorn", "celery", "postgres", "redis", "client", "other")


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU time (user + system) of every process on the machine, by pid with its group, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ")
        except OSError:
            continue  # gone meanwhile
        used = (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15 of stat)
        if int(entry) == me:
            group = "client"
        elif b"gunicorn" in cmd:
            group = "gunicorn"
        elif b"celery" in cmd:
            group = "celery"
        elif b"postgres" in cmd:
            group = "postgres"
        elif b"redis-server" in cmd:
            group = "redis"
        else:
            group = "other"
        found[int(entry)] = (group, used)
    return found


def cpu_spent(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per group between two readings; a process that ended in between is not counted."""
    spent = dict.fromkeys(CPU_GROUPS, 0.0)
    for pid, (group, used) in after.items():
        earlier = before.get(pid)
        spent[group] += used - (earlier[1] if earlier is not None and earlier[0] == group else 0.0)
    return spent


def lower_priority(pid: int, nice: int) -> None:
    """Give the worker's session the niceness too. With autogroup scheduling (Linux's default for desktop and
    many server kernels: /proc/sys/kernel/sched_autogroup_enabled), each session shares the CPU equally with
    every other session whatever its processes' niceness, so ``nice`` alone does nothing against gunicorn,
    which runs in a session of its own. A systemd unit gets the same with ``Nice=`` or ``CPUWeight=``."""
    autogroup = Path(f"/proc/{pid}/autogroup")
    if nice > 0 and autogroup.exists():
        try:
            autogroup.write_text(str(nice))
        except OSError as exc:
            print(f"could not lower the worker's autogroup priority: {exc}", flush=True)


@dataclass
class Level:
    endpoint: str
    clients: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    case_numbers: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per group during the level

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + sum(self.errors.values())

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def row(self, name: str) -> str:
        errors = sum(self.errors.values())
        detail = f" ({', '.join(f'{k}: {v}' for k, v in sorted(self.errors.items()))})" if errors else ""
        return (f"| {name} | {self.endpoint} | {self.clients} | {self.requests} | {errors}{detail} | "
                f"{self.requests / self.seconds:.1f} | {self.percentile(50):.0f} | {self.percentile(95):.0f} | "
                f"{self.percentile(99):.0f} |")


def scan_body(image: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with the picture as the field ``file``, and its Content-Type."""
    boundary = "takedown-bench-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Load:
    """The requests of one run. ``scans`` (one iterator for every server and level) gives each scan a picture
    never sent before; ``numbers`` numbers the report bodies the same way."""

    def __init__(self, base: str, api_key: str, scans: Iterator[tuple[bytes, str]], numbers: Iterator[int]):
        self.base, self.api_key, self.scans, self.numbers = base, api_key, scans, numbers

    def report_body(self) -> dict[str, object]:
        n = next(self.numbers)
        location = f"demo://content/{n % 36 + 1}" if n % 4 == 0 else f"https://host.example/p/{n}"
        return {"reporter_name": "Load Test", "reporter_email": "load@example.org", "relationship": "self",
                "locations": [location], "statement": "Benchmark report: an intimate image shared without consent.",
                "good_faith": True, "signature": "Load Test", "adult_confirmed": True}

    async def one(self, client: RawClient, level: Level, due: float | None = None) -> None:
        """One request; its latency counts from ``due`` (open loop: when it was scheduled) or from now."""
        started = time.perf_counter() if due is None else due
        try:
            if level.endpoint == "report":
                body = json.dumps(self.report_body()).encode()
                status, answer = await client.post("/api/v1/reports", body, "application/json")
                expected = 201
            else:
                body, content_type = next(self.scans)  # a picture never sent before
                status, answer = await client.post("/api/v1/scan", body, content_type,
                                                   {"Authorization": f"Api-Key {self.api_key}"})
                expected = 200
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            level.errors[type(exc).__name__] = level.errors.get(type(exc).__name__, 0) + 1
            client.close()
            return
        elapsed = (time.perf_counter() - started) * 1000
        if status != expected:
            level.errors[str(status)] = level.errors.get(str(status), 0) + 1
            return
        level.latencies_ms.append(elapsed)
        if level.endpoint == "report":
            level.case_numbers.append(json.loads(answer)["case_number"])

    async def run_level(self, endpoint: str, clients: int, requests: int, seconds: float,
                        think: float = 0.0) -> Level:
        level = Level(endpoint, clients)
        tickets = {"left": requests}
        deadline = time.monotonic() + seconds
        connections = [RawClient(self.base) for _ in range(clients)]

        async def user(client: RawClient) -> None:
            if think:  # clients start spread over one pause, not all at once
                await asyncio.sleep(random.uniform(0, think))
            while tickets["left"] > 0 and time.monotonic() < deadline:
                tickets["left"] -= 1
                await self.one(client, level)
                if think:  # the client's pause before its next request: 0.5 to 1.5 times ``think``
                    await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))

        try:
            cpu_before = cpu_seconds()
            started = time.perf_counter()
            await asyncio.gather(*(user(c) for c in connections))
            level.seconds = time.perf_counter() - started
            cpu_after = cpu_seconds()
            level.cpu = cpu_spent(cpu_before, cpu_after)
        finally:
            for client in connections:
                client.close()
        return level


class RawClient:
    """One keep-alive HTTP/1.1 connection, as lean as the protocol allows.

    The load client shares the 2 cores with the server it measures, so it must cost little: httpx spent
    about 5-6 ms of CPU per request here (measured with this script's CPU table), as much as a third of
    what the server spent; this client spends a fraction of a millisecond. It sends a prepared body
    with Content-Length and reads a response framed by Content-Length or chunked encoding.
    """

    def __init__(self, base: str) -> None:
        host_port = base.split("://", 1)[1]
        self.host, _, port = host_port.partition(":")
        self.port = int(port or 80)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, content_type: str,
                   headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n{extra}\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, close = None, False, False
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            parts = []
            while (size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)) > 0:
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            await self.reader.readuntil(b"\r\n")
            answer = b"".join(parts)
        elif length is not None:
            answer = await self.reader.readexactly(length)
        else:
            answer, close = await self.reader.read(), True
        if close:
            self.close()
        return status, answer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def manage(env: dict[str, str], *args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def start_gunicorn(env: dict[str, str], port: int, workers: int, log: Path,
                   cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    with log.open("a") as out:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "moderation.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--backlog", "2048", "--timeout", "120"],
            cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_port(port)
    return process


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def processed_count(url: str, case_numbers: list[str]) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM moderation_report WHERE case_number = ANY(%s)",
                              [case_numbers]).fetchone()
        done = conn.execute(
            "SELECT count(DISTINCT r.id) FROM moderation_report r JOIN moderation_reviewtask t ON t.report_id = r.id "
            "WHERE r.case_number = ANY(%s) AND t.triaged_at IS NOT NULL", [case_numbers]).fetchone()
    assert stored is not None and done is not None
    return int(stored[0]), int(done[0])


async def warm_up(load: Load) -> None:
    for endpoint in ("scan", "report"):
        await load.run_level(endpoint, clients=4, requests=12, seconds=30)


async def measure(name: str, load: Load, levels: list[int], requests: int, seconds: float) -> list[Level]:
    results = []
    for endpoint in ("scan", "report"):
        for clients in levels:
            level = await load.run_level(endpoint, clients, requests, seconds)
            print(level.row(name), flush=True)
            results.append(level)
    print("\nCPU ms per request during each level, by process group (2 cores give 2000 ms per second):")
    print("| endpoint | clients | " + " | ".join(CPU_GROUPS) + " | total | machine busy |")
    print("|---|---:|" + "---:|" * (len(CPU_GROUPS) + 2))
    for level in results:
        total = sum(level.cpu.values())
        busy = total / (level.seconds * (os.cpu_count() or 1))
        print(f"| {level.endpoint} | {level.clients} | "
              + " | ".join(f"{1000 * level.cpu[g] / max(1, level.requests):.1f}" for g in CPU_GROUPS)
              + f" | {1000 * total / max(1, level.requests):.1f} | {100 * busy:.0f} % |", flush=True)
    print()
    return results


async def measure_with_pauses(name: str, load: Load, think: float, requests: int) -> list[Level]:
    """The target levels again, each client pausing 0.5-1.5 x ``think`` seconds between requests and the
    clients starting spread over one pause (about clients / think requests a second, in no lockstep), so
    latency is read below the server's capacity."""
    results = []
    for endpoint, (clients, _target) in TARGETS.items():
        level = await load.run_level(endpoint, clients, requests, seconds=60.0, think=think)
        print(level.row(f"{name}, clients pausing {think:g} s"), flush=True)
        results.append(level)
    return results


# --- Open loop (--open-loop) -------------------------------------------------------------------------------

async def open_loop(load: Load, endpoint: str, rate: float, seconds: float, max_open: int, seed: int) -> Level:
    """Poisson arrivals at ``rate`` a second for ``seconds``; each answered on whatever connection is idle."""
    level = Level(endpoint, clients=0)  # ``clients``: the most requests in flight at once
    rng = random.Random(seed)
    idle: list[RawClient] = []  # gunicorn's sync workers close each connection: then this stays empty
    in_flight: set[asyncio.Task[None]] = set()

    async def fire(due: float) -> None:
        client = idle.pop() if idle else RawClient(load.base)
        await load.one(client, level, due=due)
        if client.writer is not None:
            idle.append(client)

    cpu_before = cpu_seconds()
    started = due = time.perf_counter()
    while (due := due + rng.expovariate(rate)) < started + seconds:
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        if len(in_flight) >= max_open:
            level.errors["over --max-open"] = level.errors.get("over --max-open", 0) + 1
            continue
        task = asyncio.create_task(fire(due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        level.clients = max(level.clients, len(in_flight))
    await asyncio.gather(*in_flight)
    level.seconds = time.perf_counter() - started
    level.cpu = cpu_spent(cpu_before, cpu_seconds())
    for client in idle:
        client.close()
    return level


@dataclass
class Stack:
    """One tree's server side: its database, Celery worker and gunicorn, all on loopback."""

    name: str
    root: Path
    env: dict[str, str]
    url: str
    api_key: str
    base: str
    processes: list[subprocess.Popen[bytes]]


def stack_start(name: str, root: Path, args: argparse.Namespace, redis_port: int, work: Path,
                admin: psycopg.Connection[Any]) -> Stack:
    database = f"takedown_bench_{os.getpid()}_{root.name.lower()}"
    admin.execute(f'CREATE DATABASE "{database}"')
    url = f"{args.server}/{database}"
    folder = work / database
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "moderation.settings", "DATABASE_URL": url,
           "PYTHONPATH": str(root),  # this tree's packages, not the virtualenv's editable install
           "SECRET_KEY": "bench-load-not-a-secret-" + "x" * 40, "TAKEDOWN_MEDIA_ROOT": str(folder / "media"),
           "TAKEDOWN_VAR_DIR": str(folder / "var"), "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
           "LOG_LEVEL": "WARNING", "DB_CONN_MAX_AGE": "60",
           "TAKEDOWN_RATE_REPORTS_PER_HOUR": "100000000", "TAKEDOWN_RATE_LOOKUPS_PER_HOUR": "100000000",
           "TAKEDOWN_RATE_SCANS_PER_HOUR": "100000000",
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    print(f"{name}: setting up {database} (migrate, seed_demo, a platform key) ...", flush=True)
    manage(env, "migrate", "--noinput", "-v", "0", cwd=root)
    manage(env, "seed_demo", cwd=root)
    # Through the service, which both trees have: the command's arguments differ between them.
    api_key = manage(env, "shell", "-c", "from moderation.services.api_keys import api_key_create; "
                     "print(api_key_create(kind='platform', name='bench')[1])", cwd=root).strip().splitlines()[-1]
    processes: list[subprocess.Popen[bytes]] = []
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "celery.log").open("w") as out:
        processes.append(subprocess.Popen(
            ["nice", "-n", str(args.celery_nice), str(BIN / "celery"), "-A", "moderation", "worker",
             "-Q", "default,detection", "--concurrency", str(args.celery_concurrency), "--without-gossip",
             "--without-mingle", "--loglevel", "WARNING"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    lower_priority(processes[-1].pid, args.celery_nice)
    port = free_port()
    processes.append(start_gunicorn(env, port, args.workers, folder / "gunicorn.log", cwd=root))
    return Stack(name, root, env, url, api_key, f"http://127.0.0.1:{port}", processes)


def stack_stop(stack: Stack, admin: psycopg.Connection[Any]) -> None:
    for process in reversed(stack.processes):
        stop(process)
    admin.execute(f'DROP DATABASE IF EXISTS "{stack.url.rsplit("/", 1)[1]}" WITH (FORCE)')


def parse_rates(spec: str) -> dict[str, float]:
    """``scan=100,report=50``, or one number for both endpoints."""
    if "=" not in spec:
        return dict.fromkeys(("scan", "report"), float(spec))
    rates = {}
    for part in spec.split(","):
        endpoint, _, rate = part.partition("=")
        if endpoint.strip() not in ("scan", "report"):
            raise SystemExit(f"--open-loop: unknown endpoint {endpoint!r}; use scan=RATE,report=RATE")
        rates[endpoint.strip()] = float(rate)
    return rates


def main_open_loop(args: argparse.Namespace) -> None:
    rates = parse_rates(args.open_loop)
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed")
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="takedown-bench-"))
    trees: list[tuple[str, Path]] = [("ours (this tree)", ROOT)]
    if args.baseline_ref:
        baseline = work / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline_ref], cwd=ROOT,
                       check=True, capture_output=True)
        trees.append((f"baseline ({args.baseline_ref})", baseline))
    per_tree = sum(int(rate * (args.duration + args.warmup)) + 50 for rate in rates.values() if rate)
    print(f"{len(trees) * per_tree} scan pictures (1000x1000 JPEG, each sent once) ...", flush=True)
    scans = iter([scan_body(picture(seed)) for seed in range(len(trees) * per_tree if "scan" in rates else 0)])
    numbers = itertools.count(1)
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port := free_port()), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_port(redis_port)
    admin = psycopg.connect(f"{args.server}/postgres", autocommit=True)
    results: list[tuple[str, Level, int, int]] = []
    print(f"load average before: {load_before[0]:.2f}; {os.cpu_count()} CPUs; gunicorn {args.workers} sync workers; "
          f"Celery worker niceness {args.celery_nice}; {args.duration:g} s per endpoint after {args.warmup:g} s "
          "of warm-up", flush=True)
    try:
        for name, root in trees:
            stack = stack_start(name, root, args, redis_port, work, admin)
            try:
                load = Load(stack.base, stack.api_key, scans, numbers)
                for endpoint, rate in rates.items():
                    if rate <= 0:
                        continue
                    asyncio.run(open_loop(load, endpoint, rate, args.warmup, args.max_open, seed=1))
                    level = asyncio.run(open_loop(load, endpoint, rate, args.duration, args.max_open, seed=2026))
                    submitted = stored = processed = 0
                    if endpoint == "report":
                        submitted = len(level.case_numbers)
                        deadline = time.monotonic() + args.drain_seconds
                        stored, processed = processed_count(stack.url, level.case_numbers)
                        while processed < submitted and time.monotonic() < deadline:
                            time.sleep(2)
                            stored, processed = processed_count(stack.url, level.case_numbers)
                        print(f"{name}: reports submitted {submitted} = stored {stored} = processed {processed}: "
                              f"{'OK' if submitted == stored == processed else 'NOT EQUAL'}", flush=True)
                    results.append((name, level, stored, processed))
                    print(f"{name}: {endpoint} at {rate:g}/s done", flush=True)
            finally:
                stack_stop(stack, admin)
    finally:
        stop(redis)
        admin.close()
        if args.baseline_ref:
            subprocess.run(["git", "worktree", "remove", "--force", str(work / "baseline")], cwd=ROOT,
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    print("\n| tree | endpoint | rate /s (asked) | req/s (done) | requests | errors | p50 ms | p95 ms | p99 ms | "
          "most in flight |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, level, _stored, _processed in results:
        errors = sum(level.errors.values())
        detail = f" ({', '.join(f'{k}: {v}' for k, v in sorted(level.errors.items()))})" if errors else ""
        print(f"| {name} | {level.endpoint} | {rates[level.endpoint]:g} | {level.requests / level.seconds:.1f} | "
              f"{level.requests} | {errors}{detail} | {level.percentile(50):.0f} | {level.percentile(95):.0f} | "
              f"{level.percentile(99):.0f} | {level.clients} |")
    print("\nCPU ms per request, by process group (2 cores give 2000 ms per second):")
    print("| tree | endpoint | " + " | ".join(CPU_GROUPS) + " | total |")
    print("|---|---|" + "---:|" * (len(CPU_GROUPS) + 1))
    for name, level, _stored, _processed in results:
        total = sum(level.cpu.values())
        print(f"| {name} | {level.endpoint} | "
              + " | ".join(f"{1000 * level.cpu[g] / max(1, level.requests):.1f}" for g in CPU_GROUPS)
              + f" | {1000 * total / max(1, level.requests):.1f} |")
    print("\nTargets (ours): scan p95 < 100 ms at 100/s with gunicorn CPU <= 8 ms per scan; report p95 < 200 ms at "
          "50/s with gunicorn CPU <= 10 ms per report; zero errors; submitted = stored = processed")
    for name, level, stored, processed in results:
        if not name.startswith("ours"):
            continue
        p95, cpu = level.percentile(95), 1000 * level.cpu["gunicorn"] / max(1, level.requests)
        p95_target, cpu_target = {"scan": (100.0, 8.0), "report": (200.0, 10.0)}[level.endpoint]
        errors = sum(level.errors.values())
        counted = level.endpoint == "scan" or len(level.case_numbers) == stored == processed
        verdict = "met" if p95 < p95_target and cpu <= cpu_target and not errors and counted else "MISSED"
        print(f"  {level.endpoint} at {rates[level.endpoint]:g}/s: p95 {p95:.0f} ms (< {p95_target:.0f}), "
              f"gunicorn {cpu:.1f} ms CPU per request (<= {cpu_target:.0f}), {errors} errors: {verdict}")
    after = os.getloadavg()
    print(f"load average after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")
    print(json.dumps({"rates": rates, "results": [
        {"tree": name, "endpoint": lv.endpoint, "requests": lv.requests, "errors": sum(lv.errors.values()),
         "p50_ms": lv.percentile(50), "p95_ms": lv.percentile(95), "p99_ms": lv.percentile(99),
         "cpu_ms_per_request": {g: 1000 * lv.cpu[g] / max(1, lv.requests) for g in CPU_GROUPS}}
        for name, lv, _s, _p in results]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432",
                        help="a PostgreSQL server where the benchmark may create and drop a database")
    parser.add_argument("--levels", default="1,5,10,20,50")
    parser.add_argument("--baseline-levels", default="1,20,50")
    parser.add_argument("--requests", type=int, default=100, help="most requests per level")
    parser.add_argument("--level-seconds", type=float, default=8.0, help="most seconds per level")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (ours)")
    parser.add_argument("--celery-concurrency", type=int, default=1)
    parser.add_argument("--celery-nice", type=int, default=19,
                        help="niceness of the Celery worker's session (0: the same CPU priority as gunicorn)")
    parser.add_argument("--drain-seconds", type=float, default=600.0)
    parser.add_argument("--think-seconds", type=float, default=1.0,
                        help="also measure the target levels with clients pausing this long between requests "
                             "(0: skip)")
    parser.add_argument("--quick", action="store_true", help="levels 1,10, baseline 10, 40 requests per level")
    parser.add_argument("--open-loop", metavar="RATES",
                        help="open loop instead: Poisson arrivals, e.g. scan=100,report=50 (a plain number: both)")
    parser.add_argument("--baseline-ref", default="",
                        help="with --open-loop: also run the code at this git commit, in a worktree, and print both")
    parser.add_argument("--duration", type=float, default=30.0, help="with --open-loop: seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=3.0, help="with --open-loop: warm-up seconds per endpoint")
    parser.add_argument("--max-open", type=int, default=256,
                        help="with --open-loop: requests in flight at most (an arrival past it is an error)")
    args = parser.parse_args()
    if args.open_loop:
        main_open_loop(args)
        return
    random.seed(2026)  # the pauses and start offsets of the paused levels
    if args.quick:
        args.levels, args.baseline_levels, args.requests = "1,10", "10", 40
    levels = [int(x) for x in args.levels.split(",")]
    baseline_levels = [int(x) for x in args.baseline_levels.split(",") if x]
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed")

    load_before = os.getloadavg()
    database = f"takedown_bench_{os.getpid()}"
    url = f"{args.server}/{database}"
    work = Path(tempfile.mkdtemp(prefix="takedown-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    admin = psycopg.connect(f"{args.server}/postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{database}"')
    try:
        redis_port = free_port()
        processes.append(subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(redis_port)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "moderation.settings", "DATABASE_URL": url,
               "SECRET_KEY": "bench-load-not-a-secret-" + "x" * 40, "TAKEDOWN_MEDIA_ROOT": str(work / "media"),
               "TAKEDOWN_VAR_DIR": str(work / "var"), "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
               "LOG_LEVEL": "WARNING", "DB_CONN_MAX_AGE": "60",
               # One address sends every request here; the per-address limits are for people, not this.
               "TAKEDOWN_RATE_REPORTS_PER_HOUR": "100000000", "TAKEDOWN_RATE_LOOKUPS_PER_HOUR": "100000000",
               "TAKEDOWN_RATE_SCANS_PER_HOUR": "100000000",
               # Receipts are rendered and "sent" in memory: the benchmark measures us, not an SMTP server.
               "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        one_thread = {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                      "NUMBA_NUM_THREADS": "1"}
        print(f"setting up {database}: migrate, seed_demo, a platform key ...", flush=True)
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "seed_demo")
        api_key = manage(env, "create_api_key", "--user", "admin", "--kind", "platform",  # seed_demo's admin
                         "--name", "bench").strip().splitlines()[-1]
        with (work / "celery.log").open("w") as out:
            processes.append(subprocess.Popen(
                ["nice", "-n", str(args.celery_nice), str(BIN / "celery"), "-A", "moderation", "worker",
                 "-Q", "default,detection", "--concurrency",
                 str(args.celery_concurrency), "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                cwd=ROOT, env=one_thread, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        lower_priority(processes[-1].pid, args.celery_nice)
        # Every scan sends a picture never sent before, as uploads to a platform mostly are: each is hashed,
        # stored encrypted for the detection worker and queued (a repeated upload would reuse its score).
        scans_needed = 24 + args.requests * (len(levels) + len(baseline_levels) + 1)
        images = [picture(seed) for seed in range(scans_needed)]
        scans = iter([scan_body(image) for image in images])
        numbers = itertools.count(1)
        print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
              f"{os.cpu_count()} CPUs; {len(images)} scan images, {len(images[0]) // 1024} KB JPEG, 1000x1000 "
              f"(one per scan); gunicorn {args.workers} workers; Celery worker niceness {args.celery_nice}",
              flush=True)
        print("\n| server | endpoint | clients | requests | errors | req/s | p50 ms | p95 ms | p99 ms |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        runs: dict[str, list[Level]] = {}
        paused: dict[str, list[Level]] = {}
        configs = [(f"ours: gunicorn {args.workers} sync workers", args.workers, one_thread, levels)]
        if baseline_levels:
            configs.append(("baseline: gunicorn 1 sync worker", 1, env, baseline_levels))
        for name, workers, server_env, server_levels in configs:
            port = free_port()
            server = start_gunicorn(server_env, port, workers, work / "gunicorn.log")
            try:
                load = Load(f"http://127.0.0.1:{port}", api_key, scans, numbers)
                asyncio.run(warm_up(load))
                runs[name] = asyncio.run(measure(name, load, server_levels, args.requests, args.level_seconds))
                if args.think_seconds and workers == args.workers:
                    print("| server | endpoint | clients | requests | errors | req/s | p50 ms | p95 ms | p99 ms |")
                    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
                    paused[name] = asyncio.run(measure_with_pauses(name, load, args.think_seconds, args.requests))
            finally:
                stop(server)

        print("\nTargets (ours):")
        ours = next(iter(runs.values()))
        for endpoint, (clients, target) in TARGETS.items():
            match = [lv for lv in ours if lv.endpoint == endpoint and lv.clients == clients]
            if match:
                p95 = match[0].percentile(95)
                verdict = "met" if p95 < target else "MISSED"
                print(f"  {endpoint} p95 at {clients} clients: {p95:.0f} ms (target < {target:.0f} ms): {verdict}")
            else:
                print(f"  {endpoint} at {clients} clients: not measured in this run")

        for levels_ in paused.values():
            for lv in levels_:
                clients, target = TARGETS[lv.endpoint]
                print(f"  {lv.endpoint} p95 at {clients} clients pausing {args.think_seconds:g} s between requests: "
                      f"{lv.percentile(95):.0f} ms ({lv.requests / lv.seconds:.1f} req/s; target < {target:.0f} ms "
                      "is stated for clients without pauses)")
        case_numbers = [c for levels_ in [*runs.values(), *paused.values()] for lv in levels_ for c in lv.case_numbers]
        submitted = len(case_numbers)
        deadline = time.monotonic() + args.drain_seconds
        stored, processed = processed_count(url, case_numbers)
        while processed < submitted and time.monotonic() < deadline:
            time.sleep(2)
            stored, processed = processed_count(url, case_numbers)
        print(f"\nCount check (acknowledged reports, measured levels): submitted {submitted} = stored {stored} = "
              f"processed {processed}: {'OK' if submitted == stored == processed else 'NOT EQUAL'}"
              + ("" if processed == submitted else f" (workers still busy after {args.drain_seconds:.0f} s)"))
        after = os.getloadavg()
        print(f"load average after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")
        print(json.dumps({"load_before": load_before, "load_after": after, "submitted": submitted,
                          "stored": stored, "processed": processed}))
    finally:
        for process in reversed(processes):
            stop(process)
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
