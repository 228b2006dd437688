"""Runs the loopback platform by hand, for trying Takedown against it (docs/platforms.md, "Testing your
implementation"): ``python -m tests.platform_server [--port 9000] [--auth bearer]``. It prints the settings to
give Takedown and runs until Ctrl-C. Posts 1 to 3 hold generated pictures."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.platform_server.fixtures import make_image, post_entry, running_platform
from tests.platform_server.runner import HOST


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.platform_server", description=__doc__)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=None, help="a free port when left out")
    parser.add_argument("--auth", choices=("signature", "bearer"), default="signature")
    args = parser.parse_args()
    # Ctrl-C or a plain `kill` stops gunicorn too (the context manager below kills its process group).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="loopback-platform-") as name:
        folder = Path(name)
        posts = [post_entry(folder, n, [make_image(n * 10 + i) for i in range(n)]) for n in (1, 2, 3)]
        with running_platform(folder, auth=args.auth, posts=posts, host=args.host, port=args.port) as platform:
            for key, value in platform.takedown_env().items():
                print(f"{key}={value}")
            print(f"# reportable: {platform.location(1)} .. {platform.location(3)}; log: {platform.base_url}/_test/log",
                  flush=True)
            try:
                while platform.server.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()
