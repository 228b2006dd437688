"""The request id: one token per request, in every log line, in every task the request enqueues and in every
audit event it causes.

- **Web.** :class:`RequestIdMiddleware` takes the request's ``X-Request-ID`` when it is a sane token (8 to 128
  characters of letters, digits and ``._:+/=-``: what proxies and load balancers generate), else makes one
  (32 hex digits), and returns it in the response's ``X-Request-ID``. It stays bound until Django's
  ``request_finished`` signal, so Django's own log line about the response, written after the middleware
  has returned, carries it too.
- **Celery.** ``before_task_publish`` puts the bound id in the message's headers (``request_id``); in the
  worker ``task_prerun`` binds it for the task's run and ``task_postrun`` unbinds it. So a task enqueued
  while serving a request (``moderation/jobs.py``), and every task that task enqueues in turn, carries the
  request's id. Tasks run eagerly (no broker) run inside the request and see its id as it is.
- **Logs.** :class:`RequestIdFilter` copies it onto every log record (``LOGGING`` in settings).
- **Audit.** ``moderation.audit`` stores it with each event it records.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
TASK_HEADER = "request_id"  # the Celery message header
_SANE = re.compile(r"[A-Za-z0-9._:+/=-]{8,128}")

_current: ContextVar[str | None] = ContextVar("takedown_request_id", default=None)


def request_id_get() -> str | None:
    """The id of the request (or of the request that caused the task) being served; None outside one."""
    return _current.get()


def request_id_clean(value: object) -> str | None:
    """``value`` when it is a sane request id, else None: nothing else a client sends reaches a log line."""
    return value if isinstance(value, str) and _SANE.fullmatch(value) else None


def request_id_new() -> str:
    return uuid.uuid4().hex


@contextmanager
def request_id_bound(value: str | None) -> Iterator[None]:
    """Run the block with ``value`` as the current request id (commands, tests)."""
    token = _current.set(value)
    try:
        yield
    finally:
        _current.reset(token)


class RequestIdMiddleware:
    """First in ``MIDDLEWARE``, so every later middleware, view and task sees the id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        value = request_id_clean(request.headers.get(HEADER)) or request_id_new()
        _current.set(value)  # unbound by request_finished, after Django has logged the response
        response = self.get_response(request)
        response[HEADER] = value
        return response


def _request_done(**_kwargs: Any) -> None:
    _current.set(None)


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record: the current id, or ``missing`` outside a request."""

    def __init__(self, missing: str | None = None) -> None:
        super().__init__()
        self.missing = missing

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get() or self.missing
        return True


# --- Celery: the id travels in the message headers ------------------------------------------------------
_task_tokens: dict[str, Token[str | None]] = {}


def _task_publish(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    value = _current.get()
    if value and headers is not None:
        headers.setdefault(TASK_HEADER, value)


def _task_start(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    value = request_id_clean(getattr(getattr(task, "request", None), TASK_HEADER, None))
    if value and task_id:  # a task without one (beat's) leaves the current id as it is (eager: the request's)
        _task_tokens[task_id] = _current.set(value)


def _task_end(task_id: str | None = None, **_kwargs: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        _current.reset(token)


def request_id_signals_connect() -> None:
    """Connect the Celery and Django signal receivers (idempotent; ``moderation/celery.py`` calls it)."""
    before_task_publish.connect(_task_publish, weak=False, dispatch_uid="takedown-request-id-publish")
    task_prerun.connect(_task_start, weak=False, dispatch_uid="takedown-request-id-prerun")
    task_postrun.connect(_task_end, weak=False, dispatch_uid="takedown-request-id-postrun")
    request_finished.connect(_request_done, weak=False, dispatch_uid="takedown-request-id-finished")
