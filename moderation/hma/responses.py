"""HMA's answer shapes and parameter rules, without pydantic or Flask.

- Errors are ``{"message": "..."}`` with the status (:class:`HmaError`).
- Input that fails a route's declared schema (a required parameter missing, a boolean or number that does not
  parse, a body that is not the object asked for) is 422 with a list of errors shaped as pydantic writes
  them: ``type``, ``loc``, ``msg``, ``input`` (:class:`Unprocessable`; the ``ValidationErrorModel`` of HMA's
  OpenAPI description).
- Booleans parse as pydantic parses them: true, 1, yes, on, t, y and their opposites, in any case.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse

_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class HmaError(Exception):
    """An answer of ``status`` with ``{"message": message}``."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class Unprocessable(Exception):
    """422: the input does not fit the route's schema; ``errors`` as pydantic lists them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(data, separators=(",", ":")), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> HttpResponse:
    return json_response({"message": message}, status, headers)


def problem(kind: str, loc: list[Any], msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": msg, "input": value}


def parse_bool(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Unprocessable([problem("bool_parsing", [name], "Input should be a valid boolean, unable to interpret "
                                                         "input", value)])


def query_params(request: HttpRequest, *, required: tuple[str, ...] = (),
                 booleans: Mapping[str, bool] | None = None) -> tuple[dict[str, str], dict[str, bool]]:
    """The query's parameters (the last value of each) and its booleans, checked as the route's schema says."""
    given = {name: request.GET[name] for name in request.GET}
    errors = [problem("missing", [name], "Field required", given) for name in required if name not in given]
    flags: dict[str, bool] = {}
    for name, default in (booleans or {}).items():
        try:
            flags[name] = parse_bool(given[name], name) if name in given else default
        except Unprocessable as exc:
            errors += exc.errors
    if errors:
        raise Unprocessable(errors)
    return given, flags


def json_body(request: HttpRequest) -> Any:
    """The request body as JSON; ``HmaError`` 400 when it is not JSON."""
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise HmaError(400, "The request body is not valid JSON") from None


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The body, which a route's schema says is a JSON object: 422 otherwise."""
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise Unprocessable([problem("json_invalid", ["body"], "Invalid JSON", request.body[:200].decode(
            "utf-8", "replace"))]) from None
    if not isinstance(data, dict):
        raise Unprocessable([problem("model_attributes_type", ["body"], "Input should be a valid dictionary or "
                                                                        "object to extract fields from", data)])
    return data


def body_field(data: Mapping[str, Any], name: str, kind: str, *, required: bool = False) -> Any:
    """One field of a JSON body, as pydantic's lax mode reads ``str``, ``float`` or ``bool`` (None allowed
    unless required). Raises :class:`Unprocessable`."""
    if name not in data or (data[name] is None and not required):
        if required:
            raise Unprocessable([problem("missing", [name], "Field required", dict(data))])
        return None
    value = data[name]
    if kind == "str":
        if isinstance(value, str):
            return value
        raise Unprocessable([problem("string_type", [name], "Input should be a valid string", value)])
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise Unprocessable([problem("float_parsing", [name], "Input should be a valid number", value)])
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            return parse_bool(value, name)
        raise Unprocessable([problem("bool_type", [name], "Input should be a valid boolean", value)])
    raise ValueError(f"unknown kind {kind!r}")
