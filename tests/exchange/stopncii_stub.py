"""A local stand-in for StopNCII's partner API, for tests: http.server on 127.0.0.1 in a thread.

It checks every request against the documented format (docs/exchange.md, "StopNCII and ThreatExchange";
Meta's reference client python-threatexchange ``exchanges/clients/stopncii/api.py``) and answers 400 with
a message naming what is wrong on any deviation, 401 on a missing or wrong key:

- headers ``Ocp-Apim-Subscription-Key`` and ``x-functions-key`` (one key per function);
- ``GET /v1/FetchHashes?startTimestamp=&pageSize=[&nextPageToken=]``: only those parameters, whole
  numbers, and a page token this server issued for that same ``startTimestamp``;
- ``POST /v1/SubmitHashes`` ``{"count", "hashRecords": [{"lastModtimestamp", "signalType", "hashValue",
  "CSPFeedbacks": [{"feedbackValue", "tags"}]}]}`` and ``POST /v1/SubmitFeedback`` ``{"count",
  "hashFeedbacks": [{"hashValue", "feedbackValue", "tags"}]}`` as JSON, enum values and hash formats checked.

Tests script failures with :meth:`StopNCIIStub.fail_next` (e.g. 503s, a malformed body, a dropped
connection) and read what arrived in ``requests``, ``submitted_hashes`` and ``submitted_feedback``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SUBSCRIPTION_KEY = "stub-subscription-key"
FUNCTION_KEYS = {"FetchHashes": "stub-fetch-key", "SubmitHashes": "stub-submit-hashes-key",
                 "SubmitFeedback": "stub-submit-feedback-key"}
SIGNAL_TYPES = {"Unknown", "ImagePDQ", "VideoMD5", "VideoTMK", "Text", "URL"}
CASE_STATUSES = {"Unknown", "Received", "Active", "Withdrawn", "Deleted"}
FEEDBACK_VALUES = {"Unknown", "None", "QualityUnknown", "PendingReview", "Blocked", "NotBlocked", "Withdrawn",
                   "Deleted"}
_HASH_FORMATS = {"ImagePDQ": re.compile(r"[0-9a-f]{64}"), "VideoMD5": re.compile(r"[0-9a-f]{32}")}
MAX_PAGE_SIZE = 1000  # the stub's own limit: the reference client asks for 800


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Logged:
    method: str
    endpoint: str
    query: dict[str, str]
    body: Any
    status: int


@dataclass
class StopNCIIStub:
    records: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Logged] = field(default_factory=list)
    submitted_hashes: list[dict[str, Any]] = field(default_factory=list)
    submitted_feedback: list[dict[str, Any]] = field(default_factory=list)
    # Scripted answers, used in order before normal handling: (status, raw body) or "drop" (close the socket).
    script: deque[tuple[int, bytes] | str] = field(default_factory=deque)
    _tokens: dict[str, tuple[int, int]] = field(default_factory=dict)  # token -> (startTimestamp, offset)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- control ---

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> StopNCIIStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub._handle(self, "GET")

            def do_POST(self) -> None:
                stub._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StopNCIIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_record(self, *, hash_value: str, signal_type: str = "ImagePDQ", status: str = "Received",
                   timestamp: int, cases: dict[str, str] | None = None,
                   feedbacks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Add (or replace: StopNCII keeps one current record per hash) a record the feed will serve."""
        record: dict[str, Any] = {"lastModtimestamp": timestamp, "signalType": signal_type, "hashValue": hash_value,
                                  "hashStatus": status,
                                  "caseNumbers": cases if cases is not None else {secrets.token_hex(8): status}}
        if feedbacks:
            record["CSPFeedbacks"] = feedbacks
        with self._lock:
            self.records = [r for r in self.records
                            if (r["signalType"], r["hashValue"]) != (signal_type, hash_value)]
            self.records.append(record)
        return record

    def fail_next(self, *answers: tuple[int, bytes] | str) -> None:
        """Answer the next requests (after their checks pass) with these instead: (status, body) or "drop"."""
        self.script.extend(answers)

    def fetches(self) -> list[Logged]:
        return [r for r in self.requests if r.endpoint == "FetchHashes"]

    # --- serving ---

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        endpoint = url.path.removeprefix("/v1/")
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body: Any = None
        try:
            if endpoint not in FUNCTION_KEYS or not url.path.startswith("/v1/"):
                raise Rejected(404, f"no such function {url.path!r}; the functions are "
                                    f"{', '.join('/v1/' + name for name in FUNCTION_KEYS)}")
            expected_method = "GET" if endpoint == "FetchHashes" else "POST"
            if method != expected_method:
                raise Rejected(405, f"{endpoint} takes {expected_method}, not {method}")
            if handler.headers.get("Ocp-Apim-Subscription-Key") != SUBSCRIPTION_KEY:
                raise Rejected(401, "missing or wrong Ocp-Apim-Subscription-Key header")
            if handler.headers.get("x-functions-key") != FUNCTION_KEYS[endpoint]:
                raise Rejected(401, f"missing or wrong x-functions-key header for {endpoint}")
            if method == "POST":
                if handler.headers.get_content_type() != "application/json":
                    raise Rejected(400, "Content-Type must be application/json")
                length = int(handler.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(handler.rfile.read(length))
                except ValueError as exc:
                    raise Rejected(400, f"the body is not JSON: {exc}") from None
            if endpoint == "FetchHashes":
                self._check_fetch(query)
            elif endpoint == "SubmitHashes":
                self._check_submit_hashes(body)
            else:
                self._check_submit_feedback(body)
            if self.script:
                scripted = self.script.popleft()
                self.requests.append(Logged(method, endpoint, query, body, 0 if scripted == "drop" else scripted[0]))
                if scripted == "drop":
                    handler.close_connection = True
                    handler.connection.close()
                    return
                assert not isinstance(scripted, str)
                self._send(handler, scripted[0], scripted[1])
                return
            if endpoint == "FetchHashes":
                answer: Any = self._page(query)
            elif endpoint == "SubmitHashes":
                self.submitted_hashes.extend(body["hashRecords"])
                answer = {}
            else:
                self.submitted_feedback.extend(body["hashFeedbacks"])
                answer = {}
        except Rejected as exc:
            self.requests.append(Logged(method, endpoint, query, body, exc.status))
            self._send(handler, exc.status, json.dumps({"message": str(exc)}).encode())
            return
        self.requests.append(Logged(method, endpoint, query, body, 200))
        self._send(handler, 200, json.dumps(answer).encode())

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    # --- FetchHashes ---

    def _check_fetch(self, query: dict[str, str]) -> None:
        unknown = set(query) - {"startTimestamp", "pageSize", "nextPageToken"}
        if unknown:
            raise Rejected(400, f"unknown query parameter(s): {', '.join(sorted(unknown))}")
        for name in ("startTimestamp", "pageSize"):
            if name not in query:
                raise Rejected(400, f"{name} is required")
            if not query[name].isdigit():
                raise Rejected(400, f"{name} must be a whole number; got {query[name]!r}")
        if not 1 <= int(query["pageSize"]) <= MAX_PAGE_SIZE:
            raise Rejected(400, f"pageSize must be 1 to {MAX_PAGE_SIZE}")
        token = query.get("nextPageToken")
        if token is not None:
            issued = self._tokens.get(token)
            if issued is None:
                raise Rejected(400, "nextPageToken is not one this server issued (or it has expired)")
            if issued[0] != int(query["startTimestamp"]):
                raise Rejected(400, "nextPageToken belongs to another startTimestamp; send the same one")

    def expire_tokens(self) -> None:
        self._tokens.clear()

    def _page(self, query: dict[str, str]) -> dict[str, Any]:
        start, size = int(query["startTimestamp"]), int(query["pageSize"])
        offset = self._tokens[query["nextPageToken"]][1] if "nextPageToken" in query else 0
        with self._lock:
            matching = sorted((r for r in self.records if r["lastModtimestamp"] >= start),
                              key=lambda r: (r["lastModtimestamp"], r["hashValue"]))
        page = matching[offset:offset + size]
        has_more = offset + size < len(matching)
        token = base64.urlsafe_b64encode(json.dumps([start, offset + size, secrets.token_hex(4)]).encode()).decode()
        if has_more:
            self._tokens[token] = (start, offset + size)
        return {"count": len(page), "nextPageToken": token if has_more else None,
                "nextSetTimestamp": max((r["lastModtimestamp"] for r in matching), default=start),
                "hasMoreRecords": has_more, "hashRecords": page}

    # --- SubmitHashes / SubmitFeedback ---

    @staticmethod
    def _check_keys(obj: Any, where: str, required: set[str], optional: frozenset[str] = frozenset()) -> None:
        if not isinstance(obj, dict):
            raise Rejected(400, f"{where} must be an object")
        missing = required - set(obj)
        if missing:
            raise Rejected(400, f"{where} is missing {', '.join(sorted(missing))}")
        unknown = set(obj) - required - optional
        if unknown:
            raise Rejected(400, f"{where} has unknown field(s) {', '.join(sorted(unknown))}")

    def _check_count(self, body: Any, list_name: str) -> list[Any]:
        self._check_keys(body, "the body", {"count", list_name})
        items = body[list_name]
        if not isinstance(items, list) or not items:
            raise Rejected(400, f"{list_name} must be a non-empty list")
        if body["count"] != len(items):
            raise Rejected(400, f"count is {body['count']!r} but {list_name} holds {len(items)}")
        return items

    @staticmethod
    def _check_feedback(item: dict[str, Any], where: str) -> None:
        if item["feedbackValue"] not in FEEDBACK_VALUES:
            raise Rejected(400, f"{where}.feedbackValue {item['feedbackValue']!r} is not one of "
                                f"{', '.join(sorted(FEEDBACK_VALUES))}")
        tags = item["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise Rejected(400, f"{where}.tags must be a list of strings")

    def _check_hash(self, signal_type: Any, value: Any, where: str) -> None:
        if signal_type not in SIGNAL_TYPES:
            raise Rejected(400, f"{where}.signalType {signal_type!r} is not one of {', '.join(sorted(SIGNAL_TYPES))}")
        if not isinstance(value, str) or not value:
            raise Rejected(400, f"{where}.hashValue must be a non-empty string")
        pattern = _HASH_FORMATS.get(signal_type)
        if pattern and not pattern.fullmatch(value):
            raise Rejected(400, f"{where}.hashValue is not a {signal_type} hash (lowercase hex)")

    def _check_submit_hashes(self, body: Any) -> None:
        for i, record in enumerate(self._check_count(body, "hashRecords")):
            where = f"hashRecords[{i}]"
            self._check_keys(record, where, {"lastModtimestamp", "signalType", "hashValue", "CSPFeedbacks"})
            if isinstance(record["lastModtimestamp"], bool) or not isinstance(record["lastModtimestamp"], int):
                raise Rejected(400, f"{where}.lastModtimestamp must be a Unix time in whole seconds")
            self._check_hash(record["signalType"], record["hashValue"], where)
            if not isinstance(record["CSPFeedbacks"], list) or not record["CSPFeedbacks"]:
                raise Rejected(400, f"{where}.CSPFeedbacks must be a non-empty list")
            for j, feedback in enumerate(record["CSPFeedbacks"]):
                self._check_keys(feedback, f"{where}.CSPFeedbacks[{j}]", {"feedbackValue", "tags"})
                self._check_feedback(feedback, f"{where}.CSPFeedbacks[{j}]")

    def _check_submit_feedback(self, body: Any) -> None:
        known = {r["hashValue"] for r in self.records} | {r["hashValue"] for r in self.submitted_hashes}
        for i, item in enumerate(self._check_count(body, "hashFeedbacks")):
            where = f"hashFeedbacks[{i}]"
            self._check_keys(item, where, {"hashValue", "feedbackValue", "tags"})
            if not isinstance(item["hashValue"], str) or item["hashValue"] not in known:
                raise Rejected(400, f"{where}.hashValue is not a hash StopNCII knows")
            self._check_feedback(item, where)
