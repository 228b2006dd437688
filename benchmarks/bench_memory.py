"""Memory of a web process and of a detection worker, this tree against the code at --baseline-ref.

    .venv/bin/python benchmarks/bench_memory.py                         # against c5153c7 (about 2 minutes)
    .venv/bin/python benchmarks/bench_memory.py --baseline-ref HEAD~3 --scans 40 --images 60

For each tree (this one, and a git worktree of ``--baseline-ref`` in a temporary folder, the same virtualenv),
all on this machine and stopped at the end:

- **web**: a fresh SQLite database (migrated, one platform API key) and gunicorn serving the tree's
  ``moderation.wsgi`` with one sync worker on a loopback port. ``--scans`` scans are POSTed to
  ``/api/v1/scan`` (each a new 1000 x 750 JPEG), then the worker's VmRSS and VmHWM (its peak) are read
  from ``/proc/<worker>/status``. Twice, each with a fresh gunicorn: scans as a platform sends them by
  default (hashed and matched, the score queued for a worker: here an in-process memory broker,
  ``CELERY_TASK_ALWAYS_EAGER=0``, so nothing is scored in the web process), and with ``detection=inline``
  (scored in the request too).
- **detection worker**: a process that starts as a ``celery worker`` process does (Django, the Celery app,
  every task module, the worker_init handler) and scores ``--images`` images with
  ``detection.scoring.score_bytes``; then its VmRSS and VmHWM, and whether torch is loaded. Then, pinned to
  one core with one thread: images/s of ``score_bytes`` (decode and every signal) and of the learned
  model's network alone on each image's 16 patches (ONNX Runtime and, in this tree, torch too, loaded only
  after the memory was read). The worker runs ``--rounds`` times, the trees taking turns; its speeds are
  the best round's.

Prints one table for both trees. Numbers move with the machine's load; compare rows of one run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MEDIA_KEY = "bench-1:YmVuY2gtb25seS1tZWRpYS1rZXktMzItYnl0ZXMhISE="  # a throwaway key for a throwaway database

CREATE_KEY = (
    "from moderation.services.api_keys import api_key_create; print(api_key_create(kind='platform', name='bench')[1])"
)

# What a Celery worker process does before and while it runs score tasks; then the one-core speed figures.
WORKER = r"""
import io, json, os, sys, time
from pathlib import Path

import django
from PIL import Image

django.setup()
from moderation.celery import _limit_worker_memory, app

app.loader.import_default_modules()
_limit_worker_memory()
from detection.scoring import score_bytes


def status(name):
    for line in open("/proc/self/status"):
        if line.startswith(name + ":"):
            return int(line.split()[1]) // 1024


images = [path.read_bytes() for path in sorted(Path(sys.argv[1]).glob("*.jpg"))]
scores = [score_bytes(data).score for data in images]
out = {"rss_mb": status("VmRSS"), "hwm_mb": status("VmHWM"), "torch": "torch" in sys.modules,
       "onnxruntime": "onnxruntime" in sys.modules, "scored": len(scores), "code": django.apps.apps.get_app_config(
       "detection").path}

os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
try:
    import cv2
    cv2.setNumThreads(1)
except ImportError:
    pass


def per_second(function, items, rounds=3):
    function(items[0])
    started = time.perf_counter()
    for _ in range(rounds):
        for item in items:
            function(item)
    return rounds * len(items) / (time.perf_counter() - started)


out["score_bytes_per_s"] = per_second(score_bytes, images, rounds=1)
try:
    from detection.learned.patches import grey, select_patches
    from detection.learned.registry import default_model, load_torch
except ImportError:  # the baseline: torch only
    import torch
    torch.set_num_threads(1)
    from detection.learned.network import grey, image_mean_logits, select_patches
    from detection.learned.registry import default_model
    patch_sets = [select_patches(grey(Image.open(io.BytesIO(data)))) for data in images]
    net = default_model().net
    out["network_torch_per_s"] = per_second(lambda patches: image_mean_logits(net, [patches]), patch_sets)
else:
    patch_sets = [select_patches(grey(Image.open(io.BytesIO(data)))) for data in images]
    onnx = default_model()
    out["network_onnx_per_s"] = per_second(lambda patches: onnx.mean_logits([patches]), patch_sets)
    import torch
    torch.set_num_threads(1)
    by_torch = load_torch()
    out["network_torch_per_s"] = per_second(lambda patches: by_torch.mean_logits([patches]), patch_sets)
print(json.dumps(out))
"""


def picture(seed: int) -> bytes:
    """A 1000 x 750 JPEG: smooth colour with grain, different for every seed. Generated, nothing else."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((1000, 750), Image.Resampling.BICUBIC)
    grain = rng.normal(0, 6, size=(750, 1000, 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(np.asarray(image) + grain, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(tree: Path, work: Path, eager: bool) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "DATABASE_"))}
    return {
        **{name: value for name, value in inherited.items() if not name.startswith(("TAKEDOWN_", "CELERY_"))},
        "PYTHONPATH": str(tree),  # the tree's code, not the editable install's
        "DJANGO_SETTINGS_MODULE": "moderation.settings",
        "DATABASE_URL": f"sqlite:///{work / 'takedown.sqlite3'}",
        "SECRET_KEY": f"bench-memory-{uuid.uuid4().hex}",
        "TAKEDOWN_VAR_DIR": str(work),
        "TAKEDOWN_MEDIA_ROOT": str(work / "media"),
        "TAKEDOWN_MEDIA_KEYS": MEDIA_KEY,
        "TAKEDOWN_RATE_REPORTS_PER_HOUR": "1000000",
        "TAKEDOWN_RATE_LOOKUPS_PER_HOUR": "1000000",
        "TAKEDOWN_TASK_MEMORY_MB": "0",
        "CELERY_TASK_ALWAYS_EAGER": "1" if eager else "0",
        "LOG_LEVEL": "WARNING",
    }


def run(tree: Path, env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:3])} failed in {tree}:\n{done.stderr[-3000:]}")
    return done.stdout


def status_mb(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) // 1024
    raise ValueError(name)


def loaded(pid: int, library: str) -> bool:
    return library in Path(f"/proc/{pid}/maps").read_text()


def post_scan(url: str, key: str, data: bytes, inline: bool) -> None:
    boundary = uuid.uuid4().hex
    fields = f'--{boundary}\r\nContent-Disposition: form-data; name="detection"\r\n\r\ninline\r\n' if inline else ""
    body = (f'{fields}--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="up.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "/api/v1/scan", data=body, method="POST", headers={
        "Authorization": f"Api-Key {key}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        reply = json.loads(answer.read())
    expected = "scored" if inline else "pending"
    if reply["detection"]["status"] != expected:
        raise SystemExit(f"scan answered {reply['detection']} (expected {expected})")


def web(tree: Path, work: Path, pictures: list[bytes], inline: bool) -> dict[str, object]:
    env = environment(tree, work, eager=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "gunicorn.log").open("wb")
    server = subprocess.Popen([str(BIN / "gunicorn"), "moderation.wsgi:application", "--bind", f"127.0.0.1:{port}",
                               "--workers", "1", "--timeout", "120"], cwd=tree, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2):
                    break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit((work / "gunicorn.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        (worker,) = [int(pid) for pid in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()]
        key = (work / "key").read_text().strip()
        for data in pictures:
            post_scan(url, key, data, inline)
        return {"rss_mb": status_mb(worker, "VmRSS"), "hwm_mb": status_mb(worker, "VmHWM"),
                "torch": loaded(worker, "libtorch"), "onnxruntime": loaded(worker, "onnxruntime")}
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def measure_web(name: str, tree: Path, work: Path, args: argparse.Namespace) -> dict[str, object]:
    """Both web figures for one tree; the same pictures for every tree."""
    work.mkdir(parents=True)
    env = environment(tree, work, eager=True)
    run(tree, env, "manage.py", "migrate", "--noinput", "-v", "0")
    (work / "key").write_text(run(tree, env, "manage.py", "shell", "-c", CREATE_KEY).strip().splitlines()[-1])
    print(f"{name}: web, default scans ...", flush=True)
    result: dict[str, object] = {"web_async": web(tree, work, [picture(i) for i in range(args.scans)], False)}
    print(f"{name}: web, inline scans ...", flush=True)
    result["web_inline"] = web(tree, work, [picture(10_000 + i) for i in range(args.scans)], True)
    return result


def measure_worker(name: str, tree: Path, work: Path, images: Path) -> dict[str, object]:
    print(f"{name}: detection worker ...", flush=True)
    result = json.loads(run(tree, environment(tree, work, eager=True), "-c", WORKER, str(images), timeout=900)
                        .strip().splitlines()[-1])
    if Path(str(result["code"])).resolve() != (tree / "detection").resolve():
        raise SystemExit(f"the worker ran {result['code']}, not {tree}")
    return dict(result)


def best_of(rounds: list[dict[str, object]]) -> dict[str, object]:
    """Memory from the first round (it does not move); each speed the best of the rounds (others' load only
    ever slows a round down)."""
    out = dict(rounds[0])
    for key in out:
        if key.endswith("_per_s"):
            out[key] = max(float(str(row[key])) for row in rounds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-ref", default="c5153c7", help="the code to compare with (a git commit)")
    parser.add_argument("--scans", type=int, default=20, help="scans each web worker serves before it is measured")
    parser.add_argument("--images", type=int, default=40, help="images the detection worker scores")
    parser.add_argument("--rounds", type=int, default=3, help="detection worker runs per tree (speed: the best)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="takedown-bench-memory-"))
    baseline = work / "baseline-tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline_ref], cwd=ROOT, check=True,
                   capture_output=True)
    trees = [("this tree", ROOT), (f"baseline {args.baseline_ref}", baseline)]
    try:
        results = {name: measure_web(name, tree, work / f"run-{index}", args)
                   for index, (name, tree) in enumerate(trees)}
        images = work / "images"
        images.mkdir()
        for number in range(args.images):
            (images / f"{number:04d}.jpg").write_bytes(picture(20_000 + number))
        rounds: dict[str, list[dict[str, object]]] = {name: [] for name, _ in trees}
        for _ in range(args.rounds):  # the trees take turns, so a burst of load elsewhere hits both
            for index, (name, tree) in enumerate(trees):
                rounds[name].append(measure_worker(name, tree, work / f"run-{index}", images))
        for name, per_round in rounds.items():
            results[name]["worker"] = best_of(per_round)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{os.cpu_count()} CPUs; gunicorn 1 sync worker after {args.scans} scans of 1000 x 750 JPEGs; "
          f"detection worker after {args.images} images; speeds on one core, the best of {args.rounds} rounds")
    print("\n| tree | process | VmRSS MiB | VmHWM MiB | torch loaded | onnxruntime loaded |")
    print("|---|---|---:|---:|---|---|")
    for name, result in results.items():
        for key, label in (("web_async", "gunicorn worker, default scans"), ("web_inline", "gunicorn worker, "
                           "inline scans"), ("worker", "detection worker, after scoring")):
            row = result[key]
            assert isinstance(row, dict)
            print(f"| {name} | {label} | {row['rss_mb']} | {row['hwm_mb']} | {'yes' if row['torch'] else 'no'} | "
                  f"{'yes' if row['onnxruntime'] else 'no'} |")
    print("\n| tree | score_bytes, images/s | the network on 16 patches, images/s: ONNX Runtime | torch |")
    print("|---|---:|---:|---:|")
    for name, result in results.items():
        row = result["worker"]
        assert isinstance(row, dict)
        onnx = f"{row['network_onnx_per_s']:.0f}" if "network_onnx_per_s" in row else "-"
        print(f"| {name} | {row['score_bytes_per_s']:.1f} | {onnx} | {row['network_torch_per_s']:.0f} |")


if __name__ == "__main__":
    main()
