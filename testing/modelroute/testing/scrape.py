"""Scrape collectors, and read one sample out of a Prometheus text exposition, parsed (not matched as a string).

Tests assert on metric values; how the client formats a number (``2`` or ``2.0``) is none of
their business, so they parse with prometheus-client's own parser.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector


def scrape(*collectors: Collector) -> str:
    """What ``/metrics`` would say of ``collectors`` alone (a fresh registry, not the global one)."""
    registry = CollectorRegistry(auto_describe=False)
    for c in collectors:
        registry.register(c)
    return generate_latest(registry).decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample: ``(sample name, labels)`` -> value."""
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def sample(text: str, name: str, /, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly ``labels`` (None: no such sample)."""
    return samples(text).get((name, frozenset(labels.items())))
