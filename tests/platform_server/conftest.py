"""The loopback platform's own tests get its fixture from here; other test folders import it the same way."""

from tests.platform_server.fixtures import loopback_platform  # noqa: F401
