from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    """These tests send many reports from one address on purpose; the per-address limits are tested elsewhere."""
    limits = getattr(settings, "TAKEDOWN_RATE_LIMITS", {})
    settings.TAKEDOWN_RATE_LIMITS = {scope: (10**9, seconds) for scope, (_n, seconds) in limits.items()}
