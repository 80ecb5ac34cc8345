"""The sidecar's one door to prometheus-client: metric families and a registry, without the package ``__init__``.

Why: ``import prometheus_client`` (``prometheus_client.core`` too) runs the package ``__init__``,
which imports its exposition (``http.server``, ``urllib.request``, ``wsgiref``, ``gzip``...), the
default registry and its process, platform and GC collectors: 19 M instructions, 1.1 % of a
one-provider sidecar's start (bench/README.md, session 6), for servers and push clients the
sidecar never uses. The sidecar builds families at scrape time and renders them itself (``server.admin``):
the text renderer (``exposition``) is imported on the first scrape of the admin port, off the
request path. The package is loaded with ``leanimport`` (its ``__init__`` runs only if some other
name of it is read); the classes are the library's own.
"""

from __future__ import annotations

from typing import Protocol

from modelroute.sidecar.providers.leanimport import lean_package

prometheus_client = lean_package("prometheus_client")

from prometheus_client.metrics_core import (  # noqa: E402  (after lean_package: its finder imports them)
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry  # noqa: E402

__all__ = ["CollectorRegistry", "CounterMetricFamily", "GaugeMetricFamily", "HistogramMetricFamily", "Metric",
           "generate_latest"]


class Collecting(Protocol):
    def collect(self) -> list[Metric]: ...


def generate_latest(registry: Collecting) -> bytes:
    """``prometheus_client.exposition.generate_latest`` (the text format 0.0.4), imported on the first call."""
    render = prometheus_client.exposition.generate_latest
    body: bytes = render(registry)  # type: ignore[arg-type]
    return body
