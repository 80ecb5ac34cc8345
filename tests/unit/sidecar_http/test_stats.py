"""Stats: counts per route/target, histogram buckets, tokens, JSON and Prometheus text."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelroute.sidecar.metrics.stats import BUCKETS, Histogram, Stats
from modelroute.sidecar.routing.observer import Observer
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.scrape import sample, scrape


def test_is_an_observer() -> None:
    stats = Stats()
    observer: Observer = stats  # mypy (``make typecheck``) checks Stats against the protocol
    observer.on_attempt("r", "t", "ok", 200, 0.01, None)
    observer.on_request("r", "t", "ok", 0.01, False)
    j = stats.as_json()  # and what the router reports through the seam lands in the stats
    assert j["routes"]["r"]["targets"]["t"]["outcomes"] == {"ok": 1}
    assert j["routes"]["r"]["requests"] == 1


def test_histogram_buckets_and_quantiles() -> None:
    h = Histogram()
    for v in (0.0005, 0.001, 0.003, 0.2, 100.0):
        h.observe(v)
    assert h.counts[0] == 2  # le=0.001 is inclusive
    assert h.counts[BUCKETS.index(0.005)] == 1
    assert h.counts[BUCKETS.index(0.25)] == 1
    assert h.counts[-1] == 1
    assert h.quantile(0.5) == 0.005
    assert h.quantile(0.99) is None  # beyond the last bucket


def test_counts_and_tokens() -> None:
    s = Stats()
    s.on_attempt("classify", "haiku", "rate_limited", 429, 0.05, None)
    s.on_attempt("classify", "mini", "ok", 200, 0.2, {"prompt_tokens": 10, "completion_tokens": 4})
    s.on_request("classify", "mini", "ok", 0.26, False)
    s.on_attempt("classify", "mini", "ok", 200, 0.1, {"prompt_tokens": 1, "completion_tokens": 1})
    s.on_request("classify", "mini", "ok", 0.1, True)
    s.on_request("classify", None, "exhausted", 0.3, False)
    s.on_rejected(404)
    j = s.as_json()
    r = j["routes"]["classify"]
    assert r["requests"] == 3 and r["streamed"] == 1
    assert r["outcomes"] == {"ok": 2, "exhausted": 1}
    assert r["targets"]["haiku"]["outcomes"] == {"rate_limited": 1}
    assert r["targets"]["mini"]["tokens"] == {"prompt": 11, "completion": 5}
    assert r["targets"]["mini"]["answered"] == 2
    assert j["rejected"] == {"404": 1}


def test_prometheus_text_parses() -> None:
    s = Stats()
    s.config_version = "sha256:abc"
    s.on_attempt("a/b", "t", "ok", 200, 0.02, {"prompt_tokens": 3, "completion_tokens": 2})
    s.on_request("a/b", "t", "ok", 0.02, False)
    fams = {f.name: f for f in text_string_to_metric_families(scrape(s))}
    hist = fams["modelroute_attempt_duration_seconds"]
    assert hist.type == "histogram"
    buckets = {x.labels["le"]: x.value for x in hist.samples if x.name.endswith("_bucket")}
    assert buckets["0.01"] == 0 and buckets["0.025"] == 1 and buckets["+Inf"] == 1
    tokens = {x.labels["kind"]: x.value for x in fams["modelroute_tokens"].samples}
    assert tokens == {"prompt": 3, "completion": 2}
    assert fams["modelroute_config_info"].samples[0].labels["version"] == "sha256:abc"


def test_each_sidecar_state_scrapes_its_own_registry_not_the_global_one() -> None:
    a, b = SidecarState(), SidecarState()
    a.stats.on_rejected(400)
    text_a, text_b = generate_latest(a.registry).decode(), generate_latest(b.registry).decode()
    assert sample(text_a, "modelroute_rejected_requests_total", status="400") == 1
    assert sample(text_b, "modelroute_rejected_requests_total", status="400") is None
    assert sample(text_a, "modelroute_ready") == 0 and sample(text_a, "modelroute_mirror_dropped_total") == 0
    assert "modelroute_" not in generate_latest(REGISTRY).decode()
