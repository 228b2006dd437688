"""The firehose scanner on one core: events per second it keeps up with (every image fetched, hashed with PDQ, pHash,
dHash, MD5 and SHA-256, and matched against a bank), and its lag at a steady rate, against the AT Protocol
reference network (@atproto/dev-env's PDS; `make atproto`; needs PostgreSQL and Redis as the atproto tests do).

    .venv/bin/python benchmarks/bench_firehose.py [--posts 300] [--accounts 6] [--bank-entries 10000]
                                                  [--live-seconds 20] [--atproto-python PATH]

1. Backlog: ``--accounts`` accounts post ``--posts`` posts with one generated 1024x768 JPEG each (5 % of them a
   re-encoded copy of a banked picture, so cases are opened too) as fast as the PDS takes them; then the scanner
   (``FirehoseScanner``, the code ``manage.py atproto_scan`` runs) works through those events from the cursor
   before them. Figure: events/s and images/s from its first event to its last, and CPU seconds per image.
2. Live: the scanner follows the stream while posts arrive at a steady rate (half the backlog rate, or as fast as
   the PDS takes posts if that is lower); figure: the lag of each event, from its ``time`` on the PDS to the end
   of its processing (p50, p95, max).

Baselines, same run, same frames (the backlog's websocket messages, captured once):
  decode only = this scanner's decoder (libipld) alone: frames decoded and image posts found, nothing fetched;
  atproto SDK = the PyPI ``atproto`` package's own firehose decoding (Frame.from_bytes, parse_subscribe_repos_message,
  CAR.from_bytes, models.get_or_create), when ``--atproto-python`` names a Python that has it. It cannot share
  Takedown's environment: atproto 0.0.73 wants httpx < 0.29 and cryptography < 51. Make one with
  ``python3.11 -m venv /tmp/atproto-sdk && /tmp/atproto-sdk/bin/pip install atproto==0.0.73``.

The process is pinned to one core (``sched_setaffinity``); the PDS (Node) runs on the others. Cases opened go to
Celery's in-memory broker (scoring belongs to the detection workers, not to the scanner). Takedown's database is
a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="bench-firehose-"))
os.environ.update({
    "DJANGO_SETTINGS_MODULE": "moderation.settings", "DATABASE_URL": f"sqlite:///{WORK / 'takedown.sqlite3'}",
    "SECRET_KEY": secrets.token_urlsafe(40), "TAKEDOWN_MEDIA_ROOT": str(WORK / "media"),
    "TAKEDOWN_MEDIA_KEYS": "bench-1:" + base64.b64encode(os.urandom(32)).decode(),
    "CELERY_BROKER_URL": "memory://", "CELERY_TASK_ALWAYS_EAGER": "0", "TAKEDOWN_MATCH_REFRESH_SECONDS": "1",
})

import django  # noqa: E402

django.setup()

import libipld  # noqa: E402
import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from hashing.algorithms import hash_bytes  # noqa: E402
from hashing.banks import bank_add_entries, bank_configure, bank_get_or_create  # noqa: E402
from hashing.matching import match_hashes  # noqa: E402
from moderation.models import ScannerFinding  # noqa: E402
from moderation.services.atproto_firehose import commit_image_posts, frame_decode  # noqa: E402
from moderation.services.atproto_scan import FirehoseScanner  # noqa: E402
from tests.atproto.network import AtprotoNetwork, jpeg  # noqa: E402
from tests.platform_server.fixtures import make_image  # noqa: E402

SIZE = (1024, 768)
MATCH_EVERY = 20  # one post in 20 is a re-encoded copy of a banked picture

SDK_BASELINE = r"""
import json, struct, sys, time
from atproto import CAR, models, parse_subscribe_repos_message
from atproto_subscription.frames import Frame, MessageFrame
data = open(sys.argv[1], "rb").read()
frames, at = [], 0
while at < len(data):
    (size,) = struct.unpack_from(">I", data, at); frames.append(data[at + 4:at + 4 + size]); at += 4 + size
def one_pass():
    found = 0
    for raw in frames:
        frame = Frame.from_bytes(raw)
        if not isinstance(frame, MessageFrame):
            continue
        message = parse_subscribe_repos_message(frame)
        if not isinstance(message, models.ComAtprotoSyncSubscribeRepos.Commit):
            continue
        car = CAR.from_bytes(message.blocks)
        for op in message.ops:
            if op.action == "create" and op.cid and op.path.startswith("app.bsky.feed.post/"):
                record = models.get_or_create(car.blocks.get(op.cid), strict=False)
                embed = getattr(record, "embed", None)
                found += bool(getattr(embed, "images", None) or getattr(getattr(embed, "media", None), "images", None))
    return found
found = one_pass()
passes, started = 0, time.perf_counter()
while time.perf_counter() - started < 2.0:
    one_pass(); passes += 1
print(json.dumps({"events_per_s": passes * len(frames) / (time.perf_counter() - started), "image_posts": found}))
"""


def stream_url(network: AtprotoNetwork) -> str:
    return network.pds.replace("http://", "ws://", 1) + "/xrpc/com.atproto.sync.subscribeRepos"


def frames_after(network: AtprotoNetwork, cursor: int, quiet: float = 1.0) -> list[bytes]:
    """Every message of the stream after ``cursor``, until it is quiet for ``quiet`` seconds."""
    frames = []
    with connect(f"{stream_url(network)}?cursor={cursor}", max_size=None) as socket:
        while True:
            try:
                frames.append(socket.recv(timeout=quiet))
            except TimeoutError:
                return frames


def last_seq(frames: list[bytes], default: int) -> int:
    seqs = [libipld.decode_dag_cbor_multi(f)[1].get("seq") for f in frames]
    return max([s for s in seqs if isinstance(s, int)], default=default)


def pictures(count: int, start: int, banked: list[int]) -> list[bytes]:
    out = []
    for n in range(count):
        if n % MATCH_EVERY == MATCH_EVERY - 1 and banked:
            seed = banked[n // MATCH_EVERY % len(banked)]
            out.append(jpeg(make_image(seed, size=SIZE).resize((960, 720)), quality=60))  # re-encoded copy
        else:
            out.append(jpeg(make_image(start + n, size=SIZE), quality=85))
    return out


def post_all(accounts: list, images: list[bytes], rate: float | None = None) -> float:
    """Post ``images`` from the accounts in parallel (one thread each), as fast as the PDS takes them or, with
    ``rate``, the n-th at n / rate seconds. Returns the seconds it took."""
    started = time.perf_counter()

    def share(k: int) -> None:
        for n in range(k, len(images), len(accounts)):
            if rate:
                time.sleep(max(0.0, started + n / rate - time.perf_counter()))
            accounts[k].post("generated", [images[n]])

    with ThreadPoolExecutor(len(accounts)) as pool:
        list(pool.map(share, range(len(accounts))))
    return time.perf_counter() - started


def decode_only(frames: list[bytes]) -> tuple[float, int]:
    def one_pass() -> int:
        return sum(len(commit_image_posts(frame_decode(raw)).posts) for raw in frames)

    found = one_pass()
    passes, started = 0, time.perf_counter()
    while time.perf_counter() - started < 2.0:
        one_pass()
        passes += 1
    return passes * len(frames) / (time.perf_counter() - started), found


def sdk_baseline(python: str, frames: list[bytes]) -> dict | None:
    path = WORK / "frames.bin"
    path.write_bytes(b"".join(struct.pack(">I", len(f)) + f for f in frames))
    run = subprocess.run([python, "-c", SDK_BASELINE, str(path)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": ""}, cwd=WORK)
    if run.returncode != 0:
        print(f"  atproto SDK baseline failed: {run.stderr.strip()[-500:]}")
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--accounts", type=int, default=6)
    parser.add_argument("--bank-entries", type=int, default=10_000,
                        help="random PDQ entries besides the banked pictures")
    parser.add_argument("--live-seconds", type=float, default=20.0)
    parser.add_argument("--atproto-python", default="", help="a Python with the atproto package, for its baseline")
    args = parser.parse_args()

    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    call_command("migrate", verbosity=0)
    network = AtprotoNetwork.start(log_path=WORK / "network.log")
    try:
        for name, value in network.takedown_settings().items():
            setattr(settings, name, value)
        settings.TAKEDOWN_ATPROTO_FIREHOSE_URL = stream_url(network)
        banked = list(range(70_001, 70_011))
        bank = bank_get_or_create(name="bench-confirmed")
        bank_configure(bank=bank, on_stream_match="case")
        rng = np.random.default_rng(1)
        random_pdqs = [bytes(row).hex() for row in rng.integers(0, 256, size=(args.bank_entries, 32), dtype=np.uint8)]
        bank_add_entries(bank=bank, source="bench", hashes=[("pdq", v) for v in random_pdqs]
                         + [("pdq", hash_bytes(jpeg(make_image(seed, size=SIZE), quality=85)).pdq) for seed in banked])
        print(f"one core (cpu {cpu}); bank of {args.bank_entries + len(banked)} PDQ entries; pictures "
              f"{SIZE[0]}x{SIZE[1]} JPEG; the PDS on the other cores")

        # 1. Backlog.
        accounts = [network.create_account() for _ in range(args.accounts)]
        start = last_seq(frames_after(network, 0, quiet=0.5), 0)
        images = pictures(args.posts, 1000, banked)
        posting = post_all(accounts, images)
        frames = frames_after(network, start)
        final = last_seq(frames, start)
        print(f"posted {args.posts} posts from {args.accounts} accounts in {posting:.1f} s "
              f"({args.posts / posting:.1f} posts/s, what the PDS took); {len(frames)} events to scan")
        scanner = FirehoseScanner(url=stream_url(network))
        hash_bytes(images[0])  # compile the hashing kernels and load the match index: one-offs, not per event
        match_hashes(hash_bytes(images[0]).values())
        cpu_started, started = time.process_time(), time.perf_counter()
        stats = scanner.run(start=start, stop_when=lambda s: (s.last_seq or 0) >= final)
        elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu_started
        cases = ScannerFinding.objects.count()
        events_per_s, images_per_s = stats.events / elapsed, stats.images / elapsed
        print(f"scanner, backlog: {stats.events} events ({stats.images} images hashed and matched, {cases} cases "
              f"opened) in {elapsed:.2f} s = {events_per_s:.1f} events/s, {images_per_s:.1f} images/s; "
              f"{cpu_used / max(stats.images, 1) * 1000:.1f} ms CPU per image")

        # Baselines over the same frames.
        decode_rate, found = decode_only(frames)
        print(f"baseline, decode only (libipld, this scanner's decoder): {decode_rate:,.0f} events/s "
              f"({found} image posts found)")
        if args.atproto_python:
            sdk = sdk_baseline(args.atproto_python, frames)
            if sdk:
                print(f"baseline, atproto SDK 0.0.73 decoding alone: {sdk['events_per_s']:,.0f} events/s "
                      f"({sdk['image_posts']} image posts found)")

        # 2. Live: a steady rate, lag per event.
        rate = min(images_per_s / 2, args.posts / posting * 0.8)
        live_images = pictures(int(rate * args.live_seconds), 50_000, banked)
        start = final
        live = FirehoseScanner(url=stream_url(network))
        thread = threading.Thread(target=lambda: live.run(start=start), daemon=True)
        thread.start()
        sent = post_all(accounts, live_images, rate=rate)
        end = last_seq(frames_after(network, final, quiet=0.5), final)
        deadline = time.monotonic() + 120
        while (live.stats.last_seq or 0) < end and time.monotonic() < deadline:
            time.sleep(0.1)
        live.stop()
        thread.join(timeout=30)
        lags = list(live.stats.lags)
        print(f"scanner, live at {len(live_images) / sent:.1f} posts/s for {sent:.0f} s: {live.stats.events} events, "
              f"lag p50 {percentile(lags, 0.5) * 1000:.0f} ms, p95 {percentile(lags, 0.95) * 1000:.0f} ms, "
              f"max {max(lags, default=float('nan')) * 1000:.0f} ms")
        print(json.dumps({"events_per_s": round(events_per_s, 1), "images_per_s": round(images_per_s, 1),
                          "decode_only_events_per_s": round(decode_rate),
                          "live_rate": round(len(live_images) / sent, 1),
                          "lag_p50_ms": round(percentile(lags, 0.5) * 1000),
                          "lag_p95_ms": round(percentile(lags, 0.95) * 1000),
                          "lag_max_ms": round(max(lags) * 1000) if lags else None}))
    finally:
        network.close()


if __name__ == "__main__":
    main()
