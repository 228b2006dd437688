"""Speed of the partner sync: two Takedown instances on loopback, B pulls N hash records from A.

    .venv/bin/python benchmarks/bench_sync.py [--records 1000000] [--page-size 5000]
                                              [--baseline-records 100000] [--baseline-page-size 100]

A (gunicorn, 1 worker, 2 threads, its own SQLite file) holds N active PDQ hashes in its confirmed bank,
shared with partner B. B runs ``manage.py sync_partners`` once per remote, as an operator would; the figure
is records applied per second over the whole command (process start included) and the peak RSS of that
process (``wait4``). Every page is verified (Ed25519) and applied with its checkpoint in one transaction,
through ``hashing.banks`` (BankChange rows for matchers).

  baseline = the same sync with 100-record pages, the page size StopNCII's FetchHashes hands out, measured in
  the same run (on --baseline-records records, default all N).

Load A with N entries first (not timed in the figure; printed). Needs gunicorn (a main dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exchange.signing import generate_private_key_pem

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")

FILL_A = """
from hashing.banks import ImportRow, bank_get_or_create, bank_import_entries
from exchange.partners import partner_create, partner_key_create
import hashlib, json
bank = bank_get_or_create(name="confirmed-takedowns")
def rows():
    for i in range({n}):
        yield ImportRow(line=i, algorithm="pdq", value=hashlib.sha256(b"bench-%d" % i).hexdigest(),
                        source="case:TD-BENCH-%05d" % (i // 3))
bank_import_entries(bank=bank, rows=rows(), source="bench")
bravo = partner_create(name="bravo", organisation="Bravo", allowed_banks=[bank])
_row, key = partner_key_create(partner=bravo, read_banks=[bank])
print(json.dumps({{"key": key}}))
"""

SETUP_B = """
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from exchange.partners import partner_create
from moderation.roles import ADMIN, roles_sync
roles_sync()
User.objects.create_user(username="bench-admin").groups.add(Group.objects.get(name=ADMIN))
for name, size in (("main", {page}), ("baseline", {base_page})):
    partner_create(name=name, organisation="Alpha", auto_action="block_on_match")
    call_command("partner", "remote", "--user", "bench-admin", name, "--url", "{url}", "--bank", "from-" + name,
                 "--public-key", "{public}", "--api-key-file", "{key_file}", "--page-size", str(size))
"""


def instance_env(root: Path, name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "TAKEDOWN_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "moderation.settings", "DATABASE_URL": f"sqlite:///{root / name}.sqlite3",
                "SECRET_KEY": f"bench-sync-{name}", "TAKEDOWN_VAR_DIR": str(root / name), "CELERY_BROKER_URL": "",
                "TAKEDOWN_MEDIA_ROOT": str(root / name / "media"), "LOG_LEVEL": "WARNING",
                "TAKEDOWN_MEDIA_KEYS": "bench-1:YmVuY2gtb25seS1tZWRpYS1rZXktMzItYnl0ZXMhISE=",
                "TAKEDOWN_EXCHANGE_SIGNING_KEY_FILE": str(root / name / "signing.pem")})
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def public_key(env: dict[str, str]) -> str:
    return manage(env, "exchange_key", "show").strip().splitlines()[-1]


def timed_sync(env: dict[str, str], remote: str, max_pages: int | None) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one ``sync_partners`` process."""
    args = [PYTHON, "manage.py", "sync_partners", "--remote", remote]
    if max_pages is not None:
        args += ["--max-pages", str(max_pages)]
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: wait4 must not wait on a full pipe
        start = time.perf_counter()
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            err.seek(0)
            raise SystemExit(f"sync of {remote} failed:\n{err.read().decode()[-3000:]}")
    return seconds, usage.ru_maxrss


def applied(db: Path, bank: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM hashing_bankentry e JOIN hashing_bank b ON b.id = e.bank_id "
                                "WHERE b.name = ?", (bank,)).fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=5000)
    parser.add_argument("--baseline-records", type=int, default=0, help="default: all --records")
    parser.add_argument("--baseline-page-size", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the two databases (printed path)")
    options = parser.parse_args()
    baseline_records = options.baseline_records or options.records
    root = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    a_env, b_env = instance_env(root, "a"), instance_env(root, "b")
    for name in ("a", "b"):
        (root / name).mkdir()
        (root / name / "signing.pem").write_bytes(generate_private_key_pem())
    server = None
    try:
        manage(a_env, "migrate", "--noinput")
        shutil.copyfile(root / "a.sqlite3", root / "b.sqlite3")
        start = time.perf_counter()
        key = json.loads(manage(a_env, "shell", "-c", FILL_A.format(n=options.records)).strip().splitlines()[-1])["key"]
        print(f"loaded A with {options.records} records in {time.perf_counter() - start:.0f} s "
              "(not part of the figure)")
        (root / "key").write_text(key)
        port = 18000 + os.getpid() % 1000
        url = f"http://127.0.0.1:{port}"
        manage(b_env, "shell", "-c", SETUP_B.format(page=options.page_size, base_page=options.baseline_page_size,
                                                   url=url, public=public_key(a_env), key_file=root / "key"))
        server = subprocess.Popen([GUNICORN, "moderation.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                   "--workers", "1", "--threads", "2", "--timeout", "300"], cwd=ROOT, env=a_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).close()
                break
            except OSError:
                time.sleep(0.3)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        seconds, rss = timed_sync(b_env, "main", None)
        count = applied(root / "b.sqlite3", "from-main")
        print(f"sync, {options.page_size}-record pages: {count} records in {seconds:.1f} s = "
              f"{count / seconds:,.0f} records/s, peak RSS {rss / 1024:.0f} MiB")
        pages = -(-baseline_records // options.baseline_page_size) if baseline_records < options.records else None
        seconds, rss = timed_sync(b_env, "baseline", pages)
        count = applied(root / "b.sqlite3", "from-baseline")
        print(f"baseline, {options.baseline_page_size}-record pages: {count} records in {seconds:.1f} s = "
              f"{count / seconds:,.0f} records/s, peak RSS {rss / 1024:.0f} MiB")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        if options.keep:
            print(f"databases kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
