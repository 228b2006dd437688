"""Which failures a task retries (issue 17): what may pass (the database unreachable, the platform or a remote
unavailable) is retried with backoff; a bug or a final refusal (an IntegrityError, a 4xx) fails at once.
Celery runs eagerly here: the retries run inline, one after another, without their countdowns."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError

from moderation import http, tasks
from moderation.platforms import PlatformError, PlatformRefused
from moderation.services import deadlines


def run_counting(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> int:
    """Run the deadlines task with a service that always raises ``error``; how many times the service ran."""
    calls = []

    def failing() -> None:
        calls.append(1)
        raise error

    monkeypatch.setattr(deadlines, "deadlines_check", failing)
    result = tasks.deadlines_check.apply()
    assert result.failed() and isinstance(result.result, type(error))
    return len(calls)


@pytest.mark.parametrize("error", [
    IntegrityError("duplicate key value violates unique constraint"),
    PlatformRefused("the platform answered HTTP 400"),
    ValueError("a bug"),
], ids=["integrity-error", "platform-refused", "value-error"])
def test_a_task_whose_service_fails_for_good_runs_once(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    assert run_counting(monkeypatch, error) == 1


@pytest.mark.parametrize("error", [
    OperationalError("server closed the connection unexpectedly"),
    InterfaceError("connection already closed"),
    PlatformError("the platform answered HTTP 503"),
    ConnectionRefusedError(111, "Connection refused"),
    http.Unreachable("could not reach https://host.example/: timed out"),
], ids=["operational-error", "interface-error", "platform-error", "os-error", "http-unreachable"])
def test_a_task_whose_service_fails_for_now_is_retried_until_its_retries_run_out(
        monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    assert run_counting(monkeypatch, error) == tasks.deadlines_check.max_retries + 1 == 9


def test_an_http_refusal_is_not_retried_but_a_server_error_is(monkeypatch: pytest.MonkeyPatch) -> None:
    response = http.Response(status=422, headers={}, body=b"", url="https://host.example/x")
    assert run_counting(monkeypatch, http.Refused("refused", response=response)) == 1
    response = http.Response(status=503, headers={}, body=b"", url="https://host.example/x")
    assert run_counting(monkeypatch, http.ServerError("failed", response=response)) == 9
