"""Takedown's HMA-compatible routes beside Meta's Hasher-Matcher-Actioner itself, on the same hashes, in one run.

    .venv/bin/python benchmarks/bench_hma.py                         # 1M PDQ hashes, both (about 10 minutes)
    .venv/bin/python benchmarks/bench_hma.py --hashes 100000         # a quick run
    .venv/bin/python benchmarks/bench_hma.py --skip-hma              # Takedown only (says HMA was not measured)

Both hold the same ``--hashes`` random PDQ hashes (plus the PDQ of every 4th test picture, so file lookups
hit too) in one bank, ``BENCH``, on the PostgreSQL server at ``--server`` (each its own fresh database,
dropped afterwards), and are served by gunicorn with **one sync worker**; one sequential client on this
machine sends every request (a new connection each, as gunicorn's sync worker closes them). The servers run
one after the other, so they never share the CPU.

- **Takedown**: ``manage.py bank import`` loads the bank (timed: rows/s, process start-up included; the
  command's own figure is printed beside it); the routes are ``/hma/...`` with a platform key (curation
  scope) as ``Authorization: Bearer``. A Redis of its own on a free port is the Celery broker (the
  retroactive-sweep tasks an import queues are left there, as a deployment's worker would take them).
- **HMA** (OpenMediaMatch, facebook/ThreatExchange, folder ``hasher-matcher-actioner``): installed with
  ``python-threatexchange`` from PyPI into a virtualenv of its own under ``--cache``; its source is
  ``--hma-src`` (a folder holding ``hasher-matcher-actioner``), else cloned into ``--cache`` with git. Its
  schema is made by ``flask db upgrade`` (``MIGRATION_COMMAND=1``), its tables are loaded by SQL ``COPY``
  (HMA has no bulk import; time printed, not compared), and its own scheduler, in the gunicorn worker,
  builds the index (every 60 s) and reloads it (every 30 s), its defaults. jemalloc is preloaded where
  the system has it, as HMA's Dockerfile does.

Measured for each: serving after start (gunicorn started → a banked hash matches through ``raw_lookup``);
hash lookups (``GET /m/raw_lookup``: half banked hashes with 4 bits flipped, half random) and file
lookups (``POST /m/lookup``, 1024x768 JPEGs of generated shapes, a quarter of them banked), throughput and
p50/p95; a new hash matchable (``POST /c/bank/BENCH/signal``, then ``raw_lookup`` until it matches;
Takedown also from a ``manage.py bank import`` of one row in another process: from the command's exit);
serving RSS, the gunicorn master and worker added up, after the lookups. Then the issue's targets.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hashing.pdq import pdq_hash

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BANK, HMA_BANK = "bench", "BENCH"  # Takedown's bank and its HMA name
HMA_REPO = "https://github.com/facebook/ThreatExchange"
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
# The targets (issue 20): Takedown against HMA on this machine.
TARGET_HASH_SPEEDUP, TARGET_FILE_SPEEDUP, TARGET_FRESH_S, TARGET_RSS_RATIO, TARGET_IMPORT = 2.0, 3.0, 2.0, 0.5, 50_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited ({process.returncode}); see its log")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout:.0f} s")


def run(cmd: list[str], env: dict[str, str], cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rss_mb(master: int) -> float:
    """Resident memory of a process and its children (gunicorn's master and workers), in MB."""
    pids = [master]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                status = (entry / "status").read_text()
                if re.search(rf"^PPid:\s+{master}$", status, re.M):
                    pids.append(int(entry.name))
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
            total += int(match.group(1)) if match else 0
    return total / 1024


# --- test data --------------------------------------------------------------------------------------
def picture(seed: int) -> bytes:
    """A 1024x768 JPEG of random shapes: a rich picture for PDQ, safe for work by construction."""
    rng = random.Random(seed)
    image = Image.new("RGB", (1024, 768), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x0, x1 = sorted(rng.randrange(1024) for _ in range(2))
        y0, y1 = sorted(rng.randrange(768) for _ in range(2))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)((x0, y0, x1, y1), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def flip(value: str, bits: int, rng: random.Random) -> str:
    number = int(value, 16)
    for bit in rng.sample(range(256), bits):
        number ^= 1 << bit
    return f"{number:064x}"


@dataclass
class Data:
    hashes: list[str]
    images: list[bytes]
    queries: list[str]
    known: str  # a banked hash, for readiness


def make_data(args: argparse.Namespace) -> Data:
    rng = random.Random(args.seed)
    images = [picture(args.seed * 100_000 + i) for i in range(args.files)]
    banked_pictures = [pdq_hash(Image.open(io.BytesIO(images[i])))[0] for i in range(0, len(images), 4)]
    hashes = list(dict.fromkeys([f"{rng.getrandbits(256):064x}" for _ in range(args.hashes)] + banked_pictures))
    queries = [flip(rng.choice(hashes), 4, rng) if i % 2 == 0 else f"{rng.getrandbits(256):064x}"
               for i in range(args.lookups)]
    return Data(hashes=hashes, images=images, queries=queries, known=hashes[len(hashes) // 2])


# --- one system's HTTP side ---------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    port: int
    prefix: str  # "" for HMA, "/hma" for Takedown
    headers: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            headers = dict(self.headers)
            if content_type:
                headers["Content-Type"] = content_type
            connection.request(method, self.prefix + path, body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()

    def raw_lookup(self, value: str) -> tuple[int, bytes]:
        return self.request("GET", f"/m/raw_lookup?signal_type=pdq&signal={value}")

    def matches(self, value: str) -> bool:
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, body = self.raw_lookup(value)
            return status == 200 and bool(json.loads(body).get("matches"))
        return False

    def file_lookup(self, image: bytes) -> tuple[int, bytes]:
        boundary = "bench-hma-boundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", "/m/lookup", body, f"multipart/form-data; boundary={boundary}")

    def bank_signal(self, value: str) -> None:
        status, body = self.request("POST", f"/c/bank/{HMA_BANK}/signal", json.dumps({"pdq": value}).encode(),
                                    "application/json")
        if status not in (200, 201):
            raise SystemExit(f"{self.name}: POST /c/bank/{HMA_BANK}/signal answered {status}: {body[:300]!r}")


def raw_hit(body: bytes) -> bool:
    return bool(json.loads(body).get("matches"))


def file_hit(body: bytes) -> bool:
    """``{signal type: {bank: [matches]}}`` with a match in some bank."""
    return any(banks for banks in json.loads(body).values() if isinstance(banks, dict))


def timed(calls: list[Callable[[], tuple[int, bytes]]], hit: Callable[[bytes], bool]) -> dict[str, float]:
    """Throughput and latency of the calls made one after another; ``hits``: answers with a match (both
    systems must find the same ones, or they did not do the same work)."""
    latencies: list[float] = []
    errors = hits = 0
    started = time.perf_counter()
    for call in calls:
        begin = time.perf_counter()
        status, body = call()
        latencies.append(time.perf_counter() - begin)
        errors += status != 200
        hits += status == 200 and hit(body)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"requests": len(latencies), "per_s": len(latencies) / elapsed, "errors": errors, "hits": hits,
            "p50_ms": 1000 * statistics.median(ordered), "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))]}


def until_matched(server: Server, value: str, begin: float, timeout: float, pause: float) -> float:
    """Seconds from ``begin`` until ``value`` matches through raw_lookup (inf: not within ``timeout``)."""
    while time.monotonic() - begin <= timeout:
        if server.matches(value):
            return time.monotonic() - begin
        time.sleep(pause)
    return float("inf")


def measure(server: Server, data: Data, args: argparse.Namespace, started: float) -> None:
    """Serving after start, lookups, a new hash's freshness and RSS: into ``server.figures``."""
    deadline = started + args.start_timeout
    while not server.matches(data.known):
        if time.monotonic() > deadline:
            raise SystemExit(f"{server.name}: a banked hash did not match within {args.start_timeout} s of start")
        time.sleep(0.2)
    server.figures["serving_s"] = time.monotonic() - started
    print(f"  {server.name}: serving {server.figures['serving_s']:.1f} s after start", flush=True)
    for value in data.queries[:20]:  # warm-up
        server.raw_lookup(value)
    server.figures["hash"] = timed([partial(server.raw_lookup, value) for value in data.queries], raw_hit)
    print(f"  {server.name}: hash lookups {server.figures['hash']}", flush=True)
    for image in data.images[:5]:
        server.file_lookup(image)
    server.figures["file"] = timed([partial(server.file_lookup, image) for image in data.images], file_hit)
    print(f"  {server.name}: file lookups {server.figures['file']}", flush=True)
    server.figures["rss_mb"] = rss_mb(server.process.pid) if server.process else 0.0
    rng = random.Random(args.seed + 7)
    fresh = []
    for _ in range(args.fresh_trials if server.prefix else args.hma_fresh_trials):
        value = f"{rng.getrandbits(256):064x}"
        begin = time.monotonic()
        server.bank_signal(value)
        fresh.append(until_matched(server, value, begin, args.fresh_timeout, 0.05 if server.prefix else 0.5))
        print(f"  {server.name}: a new hash matched {fresh[-1]:.2f} s after POST /c/bank/{HMA_BANK}/signal",
              flush=True)
    server.figures["fresh_s"] = fresh


# --- Takedown -----------------------------------------------------------------------------------------
def takedown_run(args: argparse.Namespace, data: Data, work: Path, admin: psycopg.Connection[Any],
                 redis_port: int) -> Server:
    database = f"takedown_bench_hma_{os.getpid()}"
    admin.execute(f'CREATE DATABASE "{database}"')
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "moderation.settings", "DATABASE_URL": f"{args.server}/{database}",
           "SECRET_KEY": "bench-hma-not-a-secret-" + "x" * 40, "TAKEDOWN_MEDIA_ROOT": str(work / "media"),
           "TAKEDOWN_VAR_DIR": str(work / "var"), "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
           "LOG_LEVEL": "WARNING", "DB_CONN_MAX_AGE": "60", "TAKEDOWN_RATE_LOOKUPS_PER_HOUR": "100000000",
           "TAKEDOWN_RATE_SCANS_PER_HOUR": "100000000", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           "DJANGO_SUPERUSER_PASSWORD": "bench-hma-not-a-password"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    manage = [sys.executable, "manage.py"]
    print(f"Takedown: {database}: migrate, an admin, a platform key ...", flush=True)
    run([*manage, "migrate", "--noinput", "-v", "0"], env, ROOT, "migrate")
    run([*manage, "createsuperuser", "--noinput", "--username", "bench", "--email", "bench@example.org"], env, ROOT,
        "createsuperuser")
    key = run([*manage, "create_api_key", "--user", "bench", "--kind", "platform", "--name", "bench-hma",
               "--curation"], env, ROOT, "create_api_key").stdout.strip().splitlines()[-1]
    path = work / "bench.csv"
    with path.open("w") as handle:
        handle.write("algorithm,value\n")
        handle.writelines(f"pdq,{value}\n" for value in data.hashes)
    print(f"Takedown: manage.py bank import of {len(data.hashes):,} rows ...", flush=True)
    begin = time.monotonic()
    done = run([*manage, "bank", "import", BANK, str(path), "--create", "--user", "bench"], env, ROOT, "bank import")
    wall = time.monotonic() - begin
    own = re.search(r"in ([\d.]+) s \(([\d,]+) rows/s\)", done.stderr)
    port = free_port()
    server = Server("Takedown", port, "/hma", {"Authorization": f"Bearer {key}"})
    server.figures["import"] = {"rows": len(data.hashes), "wall_s": wall, "per_s": len(data.hashes) / wall,
                                "command_s": float(own.group(1)) if own else None,
                                "command_per_s": int(own.group(2).replace(",", "")) if own else None}
    print(f"  Takedown: import {server.figures['import']}", flush=True)
    log = (work / "takedown-gunicorn.log").open("w")
    started = time.monotonic()
    server.process = subprocess.Popen(
        [str(BIN / "gunicorn"), "moderation.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--timeout", "120"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, server.process)
        measure(server, data, args, started)
        # From another process: a one-row import, then raw_lookup from the command's exit.
        one = work / "one.csv"
        value = f"{random.Random(args.seed + 99).getrandbits(256):064x}"
        one.write_text(f"algorithm,value\npdq,{value}\n")
        run([*manage, "bank", "import", BANK, str(one), "--user", "bench"], env, ROOT, "bank import of one row")
        server.figures["fresh_other_process_s"] = until_matched(server, value, time.monotonic(), args.fresh_timeout,
                                                                0.05)
        print(f"  Takedown: a hash imported by another process matched {server.figures['fresh_other_process_s']:.2f} s"
              f" after the command exited", flush=True)
    finally:
        stop(server.process)
        log.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return server


# --- HMA ----------------------------------------------------------------------------------------------
def hma_install(args: argparse.Namespace) -> tuple[Path, Path]:
    """HMA's source folder and the Python of its virtualenv (made once, under ``--cache``)."""
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    source = Path(args.hma_src) if args.hma_src else cache / "ThreatExchange"
    if not (source / "hasher-matcher-actioner").is_dir():
        if args.hma_src:
            raise SystemExit(f"--hma-src {source} has no hasher-matcher-actioner folder")
        print(f"HMA: cloning {HMA_REPO} into {source} ...", flush=True)
        run(["git", "clone", "--depth", "1", HMA_REPO, str(source)], dict(os.environ), cache, "git clone")
    venv = cache / "hma-venv"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "gunicorn").exists():
        print(f"HMA: installing hasher-matcher-actioner and python-threatexchange into {venv} ...", flush=True)
        run([shutil.which("python3.11") or "python3", "-m", "venv", str(venv)], dict(os.environ), cache, "venv")
        run([str(python), "-m", "pip", "install", "-q", f"{source / 'hasher-matcher-actioner'}[prod]"],
            dict(os.environ), cache, "pip install hasher-matcher-actioner")
    return source / "hasher-matcher-actioner", python


def hma_run(args: argparse.Namespace, data: Data, work: Path, admin: psycopg.Connection[Any]) -> Server:
    hma, python = hma_install(args)
    versions = run([str(python), "-m", "pip", "list", "--format", "json"], dict(os.environ), work, "pip list").stdout
    installed = {p["name"].lower(): p["version"] for p in json.loads(versions)}
    version = (hma / "version.txt").read_text().strip() if (hma / "version.txt").exists() else "?"
    database = f"hma_bench_{os.getpid()}"
    admin.execute(f'CREATE DATABASE "{database}"')
    user = re.sub(r"^postgres(ql)?://", "", args.server)
    config = work / "omm_config.py"
    config.write_text(
        "from OpenMediaMatch.storage.postgres.impl import DefaultOMMStore\n"
        "from threatexchange.signal_type.pdq.signal import PdqSignal\n"
        "from threatexchange.signal_type.md5 import VideoMD5Signal\n"
        "from threatexchange.content_type.photo import PhotoContent\n"
        "from threatexchange.content_type.video import VideoContent\n"
        "from threatexchange.exchanges.impl.static_sample import StaticSampleSignalExchangeAPI\n"
        f"DATABASE_URI = 'postgresql+psycopg2://{user}/{database}'\n"
        "PRODUCTION = True\nROLE_HASHER = True\nROLE_MATCHER = True\nROLE_CURATOR = True\nUI_ENABLED = False\n"
        "TASK_FETCHER = False\nTASK_INDEXER = True\nTASK_INDEX_CACHE = True\n"
        "STORAGE_IFACE_INSTANCE = DefaultOMMStore(signal_types=[PdqSignal, VideoMD5Signal],\n"
        "    content_types=[PhotoContent, VideoContent], exchange_types=[StaticSampleSignalExchangeAPI])\n")
    env = {**os.environ, "PYTHONPATH": str(hma / "src"), "OMM_CONFIG": str(config), "OMP_NUM_THREADS": "1"}
    for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "VIRTUAL_ENV"):
        env.pop(name, None)
    print(f"HMA {version} (threatexchange {installed.get('threatexchange', '?')}, faiss-cpu "
          f"{installed.get('faiss-cpu', '?')}): {database}: flask db upgrade, COPY of {len(data.hashes):,} "
          f"hashes ...", flush=True)
    run([str(python), "-m", "flask", "--app", "OpenMediaMatch.app", "db", "upgrade", "--directory",
         "OpenMediaMatch/migrations"], {**env, "MIGRATION_COMMAND": "1"}, hma / "src", "flask db upgrade")
    begin = time.monotonic()
    with psycopg.connect(f"{args.server}/{database}") as conn, conn.cursor() as cursor:
        bank_id = cursor.execute("INSERT INTO bank (name, enabled_ratio) VALUES (%s, 1.0) RETURNING id",
                                 [HMA_BANK]).fetchone()[0]  # type: ignore[index]
        with cursor.copy("COPY bank_content (id, bank_id, disable_until_ts) FROM STDIN") as copy:
            for number in range(1, len(data.hashes) + 1):
                copy.write_row((number, bank_id, 1))  # 1: BankContentConfig.ENABLED
        with cursor.copy("COPY content_signal (content_id, signal_type, signal_val, create_time) FROM STDIN") as copy:
            for number, value in enumerate(data.hashes, start=1):
                copy.write_row((number, "pdq", value, "2026-01-01T00:00:00Z"))
        cursor.execute("SELECT setval('bank_content_id_seq', %s)", [len(data.hashes)])
    load_s = time.monotonic() - begin
    port = free_port()
    server = Server(f"HMA {version}", port, "", {})
    server.figures["load_s"] = load_s
    server.figures["versions"] = {"hma": version, "threatexchange": installed.get("threatexchange"),
                                  "faiss-cpu": installed.get("faiss-cpu"), "jemalloc": JEMALLOC.exists()}
    gunicorn_env = {**env, "LD_PRELOAD": str(JEMALLOC)} if JEMALLOC.exists() else env
    log = (work / "hma-gunicorn.log").open("w")
    started = time.monotonic()
    server.process = subprocess.Popen(
        [str(python.parent / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "120",
         "OpenMediaMatch.app:create_app()"], cwd=hma / "src", env=gunicorn_env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, server.process)
        measure(server, data, args, started)
    finally:
        stop(server.process)
        log.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return server


# --- report -------------------------------------------------------------------------------------------
def report(ours: Server, hma: Server | None, args: argparse.Namespace, load_before: tuple[float, ...],
           pictures: int) -> None:
    def lookups(server: Server, kind: str) -> str:
        f = server.figures[kind]
        errors = f", {f['errors']} errors" if f["errors"] else ""
        hits = f"{f['hits']}/{f['requests']} hits{errors}"
        return f"{f['per_s']:.0f}/s, {f['p50_ms']:.1f} / {f['p95_ms']:.1f} ms ({hits})"

    def fresh(server: Server) -> str:
        return ", ".join("never" if t == float("inf") else f"{t:.2f} s" for t in server.figures["fresh_s"])

    imp = ours.figures["import"]
    rows: list[tuple[str, str, str]] = [
        ("hash lookup (GET /m/raw_lookup): throughput, p50 / p95", lookups(ours, "hash"),
         lookups(hma, "hash") if hma else "not measured"),
        ("file lookup (POST /m/lookup, 1024x768 JPEG): throughput, p50 / p95", lookups(ours, "file"),
         lookups(hma, "file") if hma else "not measured"),
        ("new hash matches after (POST /c/bank/BENCH/signal)", fresh(ours), fresh(hma) if hma else "not measured"),
        ("  ... banked by another process (manage.py bank import, from its exit)",
         f"{ours.figures['fresh_other_process_s']:.2f} s", "-"),
        ("serving after start", f"{ours.figures['serving_s']:.1f} s",
         f"{hma.figures['serving_s']:.1f} s" if hma else "not measured"),
        ("RSS of the serving processes (gunicorn master + worker)", f"{ours.figures['rss_mb']:.0f} MB",
         f"{hma.figures['rss_mb']:.0f} MB" if hma else "not measured"),
        (f"bulk load of {imp['rows']:,} hashes",
         f"{imp['wall_s']:.1f} s, {imp['per_s']:,.0f} rows/s (manage.py bank import; the command's own: "
         f"{imp['command_per_s'] or 0:,} rows/s)",
         f"{hma.figures['load_s']:.1f} s (SQL COPY into its tables, no API)" if hma else "not measured"),
    ]
    print(f"\nload average before: {', '.join(f'{x:.2f}' for x in load_before)}; after: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; {args.hashes:,} random PDQ "
          f"hashes and {pictures} of the pictures' in one bank; gunicorn 1 sync worker each; one sequential client")
    head = hma.name if hma else "HMA"
    print(f"\n| | Takedown | {head} |\n|---|---|---|")
    for name, a, b in rows:
        print(f"| {name} | {a} | {b} |")
    if hma is None:
        print("\nHMA was not measured (--skip-hma): the comparisons below need it.")
    print("\nTargets (issue 20):")
    if hma:
        for kind, target in (("hash", TARGET_HASH_SPEEDUP), ("file", TARGET_FILE_SPEEDUP)):
            a, b = ours.figures[kind], hma.figures[kind]
            speed, ok = a["per_s"] / b["per_s"], a["per_s"] >= target * b["per_s"] and a["p95_ms"] < b["p95_ms"]
            print(f"  {kind} lookups >= {target:.0f}x HMA's throughput and a lower p95: {speed:.2f}x, p95 "
                  f"{a['p95_ms']:.1f} vs {b['p95_ms']:.1f} ms: {verdict(ok)}")
        ratio = ours.figures["rss_mb"] / hma.figures["rss_mb"]
        print(f"  serving RSS <= {TARGET_RSS_RATIO}x HMA's: {ratio:.2f}x: {verdict(ratio <= TARGET_RSS_RATIO)}")
    worst = max([*ours.figures["fresh_s"], ours.figures["fresh_other_process_s"]])
    print(f"  a new hash matchable <= {TARGET_FRESH_S:.0f} s: at worst {worst:.2f} s: "
          f"{verdict(worst <= TARGET_FRESH_S)}")
    print(f"  import >= {TARGET_IMPORT:,} rows/s: {imp['per_s']:,.0f} rows/s (process start included), "
          f"{imp['command_per_s'] or 0:,} rows/s (the command's own): {verdict(imp['per_s'] >= TARGET_IMPORT)}")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hashes", type=int, default=1_000_000, help="random PDQ hashes in the bank (default 1M)")
    parser.add_argument("--lookups", type=int, default=2000, help="hash lookups per system")
    parser.add_argument("--files", type=int, default=200, help="file lookups per system (distinct pictures)")
    parser.add_argument("--fresh-trials", type=int, default=3, help="new-hash trials for Takedown")
    parser.add_argument("--hma-fresh-trials", type=int, default=1, help="new-hash trials for HMA (up to 90 s each)")
    parser.add_argument("--fresh-timeout", type=float, default=240)
    parser.add_argument("--start-timeout", type=float, default=900)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server (a user who may create databases)")
    parser.add_argument("--cache", default="~/.cache/takedown-bench-hma", help="HMA's source and virtualenv")
    parser.add_argument("--hma-src", help="a checkout of facebook/ThreatExchange (default: cloned into --cache)")
    parser.add_argument("--skip-hma", action="store_true",
                        help="measure Takedown only (HMA is reported as not measured)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed")
    load_before = os.getloadavg()
    print(f"generating {args.hashes:,} hashes and {args.files} pictures ...", flush=True)
    data = make_data(args)
    work = Path(tempfile.mkdtemp(prefix="takedown-bench-hma-"))
    admin = psycopg.connect(f"{args.server}/postgres", autocommit=True)
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(redis_port, redis)
        ours = takedown_run(args, data, work, admin, redis_port)
        hma = None if args.skip_hma else hma_run(args, data, work, admin)
    finally:
        stop(redis)
        admin.close()
    report(ours, hma, args, load_before, len(data.hashes) - args.hashes)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
