"""The failures of the StopNCII client, checkpoints and jobs: each is a :class:`StopNCIIError` whose message
says what to do."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class StopNCIIError(Exception):
    """Anything that went wrong talking to StopNCII; the message says what to do."""


class StopNCIIConfigError(StopNCIIError, ImproperlyConfigured):
    """A setting the StopNCII client needs is missing or wrong."""


class StopNCIIAuthError(StopNCIIError):
    """StopNCII refused our keys (401 / 403)."""


class StopNCIIRequestError(StopNCIIError):
    """StopNCII refused a request as malformed (another 4xx); retrying the same request will not help."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class StopNCIIUnavailable(StopNCIIError):
    """StopNCII could not be reached or answered 5xx / 429 on every attempt."""


class StopNCIIResponseError(StopNCIIError):
    """StopNCII answered 2xx with a body that does not have the documented shape."""
