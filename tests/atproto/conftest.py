"""Fixtures for the tests against the AT Protocol reference servers (marker ``atproto``).

``atproto_network`` starts one TestNetwork for the whole pytest run; ``atproto_settings`` points Takedown at
it with the settings docs/platforms.md gives an operator. Without Node's packages (``make atproto``),
PostgreSQL or Redis the tests skip, or fail under ``TAKEDOWN_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings

from tests.atproto.network import AtprotoNetwork, NetworkUnavailable


@pytest.fixture(scope="session")
def atproto_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtprotoNetwork]:
    log = tmp_path_factory.mktemp("atproto") / "network.log"
    try:
        network = AtprotoNetwork.start(log_path=log)
    except NetworkUnavailable as exc:
        if django_settings.TAKEDOWN_REQUIRE_SERVICES:
            pytest.fail(f"TAKEDOWN_REQUIRE_SERVICES is set, and {exc}")
        pytest.skip(str(exc))
    try:
        yield network
    finally:
        network.close()


@pytest.fixture
def atproto_settings(atproto_network: AtprotoNetwork, settings: Any) -> AtprotoNetwork:
    for name, value in atproto_network.takedown_settings().items():
        if name == "TAKEDOWN_FETCH_ALLOW_NETWORKS":
            value = [ipaddress.ip_network(network) for network in value]
        setattr(settings, name, value)
    settings.TAKEDOWN_ATPROTO_WEB_HOSTS = ["bsky.app"]
    return atproto_network
