"""Reading one sample from a service's Prometheus ``/metrics`` text."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with (at least) ``labels``; 0 when there is none."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def scrape(url: str, name: str, **labels: str) -> float:
    """``sample`` of the ``/metrics`` page at ``url``."""
    return sample(httpx.get(url, timeout=10).text, name, **labels)


def completions_applied(api_base: str) -> float:
    """Completed events the API at ``api_base`` applied (changed a task with), over its life."""
    return scrape(
        api_base + "/metrics", "snapshot_api_status_events_total", event="completed", applied="true"
    )
