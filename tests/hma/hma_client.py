"""A small client of Meta's Hasher-Matcher-Actioner (HMA), written only from HMA's own documentation.

It knows HMA's routes (``/c/banks``, ``/c/bank/<name>/content``, ``/h/hash``, ``/m/lookup``, ...) and
nothing of the server behind them: give it a base URL and, for deployments that put authentication in
front of HMA, the headers to send. The tests point it at Takedown's HMA-compatible routes to show that a
platform's HMA integration works unchanged there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class HmaError(Exception):
    """HMA answered with an error status; ``message`` is HMA's ``{"message"}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class HmaClient:
    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=dict(headers or {}), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HmaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise HmaError(response.status_code, str(message))
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    # --- Core -------------------------------------------------------------------------------------------
    def status(self) -> str:
        """``I-AM-ALIVE`` when the server is ready to match."""
        return str(self._call("GET", "/status"))

    # --- Curation: banks --------------------------------------------------------------------------------
    def banks(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/c/banks"))

    def create_bank(self, name: str, enabled_ratio: float = 1.0) -> dict[str, Any]:
        return dict(self._call("POST", "/c/banks", json={"name": name, "enabled_ratio": enabled_ratio}))

    def bank(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/c/bank/{name}"))

    def update_bank(self, name: str, **changes: Any) -> dict[str, Any]:
        return dict(self._call("PUT", f"/c/bank/{name}", json=changes))

    def delete_bank(self, name: str) -> None:
        self._call("DELETE", f"/c/bank/{name}")

    # --- Curation: content ------------------------------------------------------------------------------
    def add_photo(self, bank: str, photo: bytes, *, note: str | None = None,
                  metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Bank a photo (multipart field ``photo``); returns ``{"id", "signals"}``."""
        data: dict[str, str] = {}
        if note is not None:
            data["note"] = note
        if metadata is not None:
            import json

            data["metadata"] = json.dumps(dict(metadata))
        return dict(self._call("POST", f"/c/bank/{bank}/content", files={"photo": ("photo.jpg", photo)},
                               data=data))

    def add_signals(self, bank: str, signals: Mapping[str, str]) -> dict[str, Any]:
        """Bank hashes directly, e.g. ``{"pdq": "<64 hex>"}``; returns ``{"id", "signals"}``."""
        return dict(self._call("POST", f"/c/bank/{bank}/signal", json=dict(signals)))

    def content(self, bank: str, content_id: int, *, include_signals: bool = False) -> dict[str, Any]:
        params = {"include_signals": "true"} if include_signals else {}
        return dict(self._call("GET", f"/c/bank/{bank}/content/{content_id}", params=params))

    def disable_content(self, bank: str, content_id: int, until_ts: int = 0) -> dict[str, Any]:
        """Stop a content matching: ``disable_until_ts`` 0 (for good) or a Unix time."""
        return dict(self._call("PUT", f"/c/bank/{bank}/content/{content_id}", json={"disable_until_ts": until_ts}))

    def enable_content(self, bank: str, content_id: int) -> dict[str, Any]:
        return dict(self._call("PUT", f"/c/bank/{bank}/content/{content_id}", json={"disable_until_ts": 1}))

    def delete_content(self, bank: str, content_id: int) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/c/bank/{bank}/content/{content_id}"))

    # --- Hashing ----------------------------------------------------------------------------------------
    def hash_photo(self, photo: bytes) -> dict[str, str]:
        return dict(self._call("POST", "/h/hash", files={"photo": ("photo.jpg", photo)}))

    # --- Matching ---------------------------------------------------------------------------------------
    def lookup(self, signal_type: str, signal: str, *, banks: list[str] | None = None,
               seed: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """``{bank: [{"bank_content_id", "distance"}]}`` for one hash."""
        params = {"signal_type": signal_type, "signal": signal}
        if banks:
            params["banks"] = ",".join(banks)
        if seed is not None:
            params["seed"] = seed
        return dict(self._call("GET", "/m/lookup", params=params))

    def lookup_photo(self, photo: bytes, *, bypass_coinflip: bool = False) -> dict[str, Any]:
        """``{signal_type: {bank: [matches]}}`` for a photo file."""
        params = {"bypass_coinflip": "true"} if bypass_coinflip else {}
        return dict(self._call("POST", "/m/lookup", files={"photo": ("photo.jpg", photo)}, params=params))

    def raw_lookup(self, signal_type: str, signal: str, *, include_distance: bool = False) -> list[Any]:
        params = {"signal_type": signal_type, "signal": signal,
                  "include_distance": "true" if include_distance else "false"}
        return list(self._call("GET", "/m/raw_lookup", params=params)["matches"])

    def compare(self, signal_type: str, left: str, right: str) -> Any:
        return self._call("POST", "/m/compare", json={signal_type: [left, right]})[signal_type]


def matched_ids(result: Mapping[str, list[Mapping[str, Any]]], bank: str) -> set[int]:
    """The content ids a lookup answer lists for ``bank``."""
    return {int(m["bank_content_id"]) for m in result.get(bank, [])}
