"""One Django view per HMA path: the method picks the handler; every failure becomes HMA's answer shape."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from hashing.errors import MediaError
from hashing.shards import ShardUnavailable
from moderation.hma.auth import Caller, authenticate
from moderation.hma.responses import HmaError, Unprocessable, error_response, json_response
from moderation.services.hma import HmaRefused

logger = logging.getLogger(__name__)

Handler = Callable[..., HttpResponse]


def endpoint(handlers: Mapping[str, Handler], *, curation: bool = False, public: bool = False) -> Any:
    """A view answering ``handlers[request.method](request, caller, **path)``.

    ``curation``: the caller needs a key with the curation scope; ``public``: no caller is checked (status).
    """

    @csrf_exempt  # no session: callers authenticate with a key on every request
    def view(request: HttpRequest, **path: Any) -> HttpResponse:
        handler = handlers.get(request.method or "")
        if handler is None:
            return error_response(405, f"{request.method} is not allowed here; use {', '.join(sorted(handlers))}",
                                  {"Allow": ", ".join(sorted(handlers))})
        try:
            caller = Caller(None) if public else authenticate(request, curation=curation)
            return handler(request, caller, **path)
        except HmaError as exc:
            return error_response(exc.status, exc.message, exc.headers)
        except HmaRefused as exc:
            return error_response(exc.status, str(exc))
        except Unprocessable as exc:
            return json_response(exc.errors, 422)
        except MediaError as exc:
            return error_response(400, str(exc))
        except ShardUnavailable:
            return error_response(503, "The match index is not available right now; try again shortly.",
                                  {"Retry-After": "5"})
        except RequestDataTooBig:
            limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
            return error_response(413, f"The request body is larger than {limit_mb:.1f} MB")

    return view


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response(404, "There is no such HMA route here (docs/hma.md lists the routes served).")


def not_served(message: str) -> Any:
    """A view answering 404 with ``message`` (what to use instead), whatever the method, without a key."""

    @csrf_exempt
    def view(request: HttpRequest, **path: Any) -> HttpResponse:
        return error_response(404, message)

    return view


def refuse(message: str) -> Handler:
    """A handler answering 501 with ``message``, which names what to use instead."""

    def handler(request: HttpRequest, caller: Caller, **path: Any) -> HttpResponse:
        return error_response(501, message)

    return handler
