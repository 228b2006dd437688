"""Fixtures for the HMA-compatible routes: keys, a test client speaking to /hma, and HMA's contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hashing.algorithms import hash_bytes
from moderation.hma import lookup
from moderation.services.api_keys import api_key_create, api_key_forget
from tests.conftest import make_image_bytes

# HMA's own OpenAPI description and behaviour notes (../shared/hma, beside the checkout).
HMA_SPEC = Path(__file__).resolve().parents[3] / "shared" / "hma" / "openapi.json"
PREFIX = "/hma"
SPEC_URI = "urn:hma-openapi"
# Statuses HMA's description does not list for a route but that Takedown may answer, always as an
# ErrorResponse: 401/403 (HMA has no authentication), 405 (a method the route does not have), 413 (an
# upload over the limit), 501 (no honest mapping), 503 (the match index unavailable).
EXTRA_ERROR_STATUSES = {401, 403, 404, 405, 413, 501, 503}


@pytest.fixture(autouse=True)
def _fresh_state() -> Any:
    """Each test reads banks and keys afresh (they are cached per process between requests)."""
    lookup.banks_changed()
    api_key_forget()
    yield
    lookup.banks_changed()
    api_key_forget()


@pytest.fixture
def platform_key(db: Any) -> str:
    return api_key_create(kind="platform", name="platform that hashes and matches")[1]


@pytest.fixture
def curator_key(db: Any) -> str:
    return api_key_create(kind="platform", name="platform that curates", curation=True)[1]


class Hma:
    """Django's test client speaking to the HMA routes with a key (``Bearer``, as many HMA proxies use)."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}

    def get(self, path: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        return self.client.get(PREFIX + path, params or {}, **self.headers, **extra)

    def post(self, path: str, data: Any = None, *, files: dict[str, bytes] | None = None, query: str = "",
             **extra: Any) -> Any:
        url = PREFIX + path + (f"?{query}" if query else "")
        if files is not None:
            from django.core.files.uploadedfile import SimpleUploadedFile

            form = {name: SimpleUploadedFile(f"{name}.bin", body) for name, body in files.items()}
            form.update(data or {})
            return self.client.post(url, form, **self.headers, **extra)
        return self.client.post(url, json.dumps(data), content_type="application/json", **self.headers, **extra)

    def put(self, path: str, data: Any, **extra: Any) -> Any:
        return self.client.put(PREFIX + path, json.dumps(data), content_type="application/json", **self.headers,
                               **extra)

    def delete(self, path: str, **extra: Any) -> Any:
        return self.client.delete(PREFIX + path, **self.headers, **extra)


@pytest.fixture
def hma(platform_key: str) -> Hma:
    return Hma(platform_key)


@pytest.fixture
def curator(curator_key: str) -> Hma:
    return Hma(curator_key)


@pytest.fixture
def photo() -> Callable[[int], bytes]:
    """A generated photo (different for each seed) detailed enough for PDQ."""
    return lambda seed=0: make_image_bytes(seed, size=(320, 240))


def pdq_of(data: bytes) -> str:
    return hash_bytes(data).pdq


# --- HMA's contract ---------------------------------------------------------------------------------------

def load_spec() -> dict[str, Any]:
    # Only shared_data tests use the contract: the hook in tests/conftest.py skips them in a clone without
    # ../shared and fails them in CI.
    return dict(json.loads(HMA_SPEC.read_text()))


class Contract:
    """Checks an answer against the schema HMA's OpenAPI description gives for its route, method and status."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.registry: Registry = Registry().with_resource(SPEC_URI, Resource(contents=spec,
                                                                             specification=DRAFT202012))
        self.checked: set[tuple[str, str]] = set()

    def schema_for(self, route: str, method: str, status: int) -> dict[str, Any] | None:
        operation = self.spec["paths"][route][method.lower()]
        responses = operation["responses"]
        key = str(status)
        if key not in responses and status == 200 and "201" in responses:
            key = "201"  # HMA's quirk: its description says 201 where it answers 200 (content, signal)
        if key not in responses:
            assert status in EXTRA_ERROR_STATUSES, f"{method} {route} answered {status}, which HMA does not list"
            return {"$ref": "#/components/schemas/ErrorResponse"}
        content = responses[key].get("content", {}).get("application/json")
        return content["schema"] if content else None

    def check(self, response: Any, route: str, method: str) -> Any:
        """Validate ``response`` (a Django test response) and return its JSON (None for a text answer)."""
        self.checked.add((route, method.lower()))
        assert response.status_code != 500, response.content[:500]
        schema = self.schema_for(route, method, response.status_code)
        if not response.get("Content-Type", "").startswith("application/json"):
            assert schema is None, f"{method} {route} {response.status_code}: expected JSON"
            return None
        body = response.json()
        if schema is not None:
            resolved = {"$ref": SPEC_URI + schema["$ref"]} if "$ref" in schema else _with_refs(schema)
            Draft202012Validator(resolved, registry=self.registry).validate(body)
        return body


def _with_refs(schema: Any) -> Any:
    """A schema whose local ``$ref``s point into the registered description."""
    if isinstance(schema, dict):
        return {k: (SPEC_URI + v if k == "$ref" and v.startswith("#") else _with_refs(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_with_refs(v) for v in schema]
    return schema


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract(load_spec())
