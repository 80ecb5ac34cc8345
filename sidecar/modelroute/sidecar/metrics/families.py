"""Metric families built from plain counters at scrape time, for the sidecar's prometheus-client collectors.

The collectors (``stats.Stats``, ``pipeline.counters.Ledger``, ``rollout.evidence.Evidence``,
``server.state.ServingCollector``) each turn their dicts into ``(label values, value)`` rows;
these helpers make the family of one metric from its rows, so each metric is one statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from modelroute.sidecar.metrics.prom import CounterMetricFamily, GaugeMetricFamily

Rows = Iterable[tuple[Sequence[str], float]]


def counter(name: str, help_text: str, labels: Sequence[str], rows: Rows) -> CounterMetricFamily:
    """A counter family; ``name`` without ``_total`` (the client appends it)."""
    family = CounterMetricFamily(name, help_text, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def gauge(name: str, help_text: str, labels: Sequence[str], rows: Rows) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family
