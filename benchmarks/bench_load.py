"""Load on loopback: gunicorn + PostgreSQL + Redis + Celery workers, driven by an asyncio client (httpx).

    .venv/bin/python benchmarks/bench_load.py                  # the full run (about 3-4 minutes)
    .venv/bin/python benchmarks/bench_load.py --quick          # levels 1,10 only, fewer requests

What it starts, all on 127.0.0.1 and all stopped at the end:
- a fresh database ``takedown_bench_<pid>`` on the PostgreSQL server at ``--server`` (default the machine's
  127.0.0.1:5432), migrated, with the demo data (``seed_demo``) and a platform API key; dropped afterwards;
- its own ``redis-server`` on a free port (the broker);
- ``celery worker`` processes (``--celery-concurrency``) on the default and detection queues;
- **ours**: gunicorn, ``--workers`` sync workers (default 3), one BLAS/torch thread each;
- **baseline "gunicorn 1 sync worker"**: the same app and endpoints served by one sync worker, as a
  default ``gunicorn moderation.wsgi`` starts it.

For each server it sends, at each concurrency level (clients each keeping one request open):
- ``POST /api/v1/reports`` (JSON; one location each: every 4th a demo platform item, the others links the
  demo platform does not host, which become "unprocessable" items a moderator sees);
- ``POST /api/v1/scan`` (multipart, a 1000x1000 JPEG = 1.0 MP, 32 different generated pictures).

Each level is bounded by ``--requests`` and ``--level-seconds``. It prints throughput, p50/p95/p99 and the
errors (any answer other than 201/200, or no answer), the targets, the count check
submitted = stored = processed (after waiting for the workers to drain; processed = the case's review
task was triaged, which is the pipeline's last step), and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
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


@dataclass
class Level:
    endpoint: str
    clients: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    case_numbers: list[str] = field(default_factory=list)

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


class Load:
    def __init__(self, base: str, api_key: str, images: list[bytes]):
        self.base, self.api_key, self.images = base, api_key, images
        self.counter = 0

    def report_body(self) -> dict[str, object]:
        self.counter += 1
        n = self.counter
        location = f"demo://content/{n % 36 + 1}" if n % 4 == 0 else f"https://host.example/p/{n}"
        return {"reporter_name": "Load Test", "reporter_email": "load@example.org", "relationship": "self",
                "locations": [location], "statement": "Benchmark report: an intimate image shared without consent.",
                "good_faith": True, "signature": "Load Test", "adult_confirmed": True}

    async def one(self, client: httpx.AsyncClient, level: Level) -> None:
        started = time.perf_counter()
        try:
            if level.endpoint == "report":
                response = await client.post("/api/v1/reports", json=self.report_body())
                expected = 201
            else:
                self.counter += 1
                image = self.images[self.counter % len(self.images)]
                response = await client.post("/api/v1/scan", files={"file": ("upload.jpg", image, "image/jpeg")},
                                             headers={"Authorization": f"Api-Key {self.api_key}"})
                expected = 200
        except httpx.HTTPError as exc:
            level.errors[type(exc).__name__] = level.errors.get(type(exc).__name__, 0) + 1
            return
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != expected:
            level.errors[str(response.status_code)] = level.errors.get(str(response.status_code), 0) + 1
            return
        level.latencies_ms.append(elapsed)
        if level.endpoint == "report":
            level.case_numbers.append(response.json()["case_number"])

    async def run_level(self, endpoint: str, clients: int, requests: int, seconds: float) -> Level:
        level = Level(endpoint, clients)
        tickets = {"left": requests}
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=self.base, limits=limits, timeout=60) as client:
            async def user() -> None:
                while tickets["left"] > 0 and time.monotonic() < deadline:
                    tickets["left"] -= 1
                    await self.one(client, level)

            started = time.perf_counter()
            await asyncio.gather(*(user() for _ in range(clients)))
            level.seconds = time.perf_counter() - started
        return level


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def start_gunicorn(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("a") as out:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "moderation.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--backlog", "2048", "--timeout", "120"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432",
                        help="a PostgreSQL server where the benchmark may create and drop a database")
    parser.add_argument("--levels", default="1,5,10,20,50")
    parser.add_argument("--baseline-levels", default="1,20,50")
    parser.add_argument("--requests", type=int, default=100, help="most requests per level")
    parser.add_argument("--level-seconds", type=float, default=8.0, help="most seconds per level")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (ours)")
    parser.add_argument("--celery-concurrency", type=int, default=1)
    parser.add_argument("--drain-seconds", type=float, default=180.0)
    parser.add_argument("--quick", action="store_true", help="levels 1,10, baseline 10, 40 requests per level")
    args = parser.parse_args()
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
        api_key = manage(env, "create_api_key", "--kind", "platform", "--name", "bench").strip().splitlines()[-1]
        with (work / "celery.log").open("w") as out:
            processes.append(subprocess.Popen(
                [str(BIN / "celery"), "-A", "moderation", "worker", "-Q", "default,detection", "--concurrency",
                 str(args.celery_concurrency), "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                cwd=ROOT, env=one_thread, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        images = [picture(seed) for seed in range(32)]
        print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
              f"{os.cpu_count()} CPUs; scan images {len(images[0]) // 1024} KB JPEG, 1000x1000", flush=True)
        print("\n| server | endpoint | clients | requests | errors | req/s | p50 ms | p95 ms | p99 ms |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        runs: dict[str, list[Level]] = {}
        configs = [(f"ours: gunicorn {args.workers} sync workers", args.workers, one_thread, levels)]
        if baseline_levels:
            configs.append(("baseline: gunicorn 1 sync worker", 1, env, baseline_levels))
        for name, workers, server_env, server_levels in configs:
            port = free_port()
            server = start_gunicorn(server_env, port, workers, work / "gunicorn.log")
            try:
                load = Load(f"http://127.0.0.1:{port}", api_key, images)
                asyncio.run(warm_up(load))
                runs[name] = asyncio.run(measure(name, load, server_levels, args.requests, args.level_seconds))
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

        case_numbers = [c for levels_ in runs.values() for lv in levels_ for c in lv.case_numbers]
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
