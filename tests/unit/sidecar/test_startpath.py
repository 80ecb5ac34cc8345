"""What the sidecar's start path imports, in fresh interpreters: what is deferred stays out until used, and works then."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

START = "from modelroute.sidecar import prelude; prelude.starting().__enter__(); import modelroute.sidecar.cli\n"

FAMILIES = """
from modelroute.sidecar.metrics.prom import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
class C:
    def collect(self):
        c = CounterMetricFamily("modelroute_x", "Things counted.", labels=["route"])
        c.add_metric(["chat"], 3)
        yield c
        yield GaugeMetricFamily("modelroute_ready", "Ready.", value=1)
        h = HistogramMetricFamily("modelroute_d_seconds", "Latency.", labels=["route"])
        h.add_metric(["chat"], [("0.1", 1), ("+Inf", 2)], 0.5)
        yield h
registry = CollectorRegistry(auto_describe=False)
registry.register(C())
"""


def fresh(script: str) -> Any:
    """Run ``script`` in a new interpreter (``-OO``, as the image runs); it prints one JSON document."""
    done = subprocess.run([sys.executable, "-OO", "-c", script], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_start_path_leaves_prometheus_exposition_until_the_first_scrape() -> None:
    out = fresh(START + FAMILIES + """
import json, sys
deferred = ["prometheus_client.exposition", "prometheus_client.process_collector", "prometheus_client.gc_collector",
            "prometheus_client.platform_collector", "http.server", "wsgiref.simple_server"]
before = [m for m in deferred if m in sys.modules]
from modelroute.sidecar.metrics.prom import generate_latest
text = generate_latest(registry).decode()
print(json.dumps({"before": before, "text": text, "exposition": "prometheus_client.exposition" in sys.modules}))
""")
    assert out["before"] == []
    assert out["exposition"]  # the first scrape imported the renderer
    plain = fresh(FAMILIES.replace("modelroute.sidecar.metrics.prom", "prometheus_client.core") + """
import json
from prometheus_client import generate_latest
print(json.dumps(generate_latest(registry).decode()))
""")
    assert out["text"] == plain  # byte for byte what the library renders when imported as usual
    assert 'modelroute_x_total{route="chat"} 3.0' in plain
