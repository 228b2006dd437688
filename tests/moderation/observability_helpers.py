"""Helpers for the metrics, readiness and request-id tests: the broker that is down, the token, scraping."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

# A Redis port nothing listens on: the broker is down.
BROKER_DOWN = "redis://127.0.0.1:1/0"
# The bearer token the metrics tests configure (TAKEDOWN_METRICS_TOKEN).
TOKEN = "scrape-token-for-tests"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(client: Any) -> Samples:
    """/metrics as Prometheus reads it, with the test token."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    return parse(response.content.decode())
