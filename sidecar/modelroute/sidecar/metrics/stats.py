"""Counters and latency histograms per route and target, served as ``/stats`` and ``/metrics``.

Recording sits on the hot path (one ``on_attempt`` per upstream attempt, one ``on_request`` per
inbound request), so it is plain dict and list arithmetic on the event loop: about a microsecond,
no locks, no label lookups. prometheus-client's ``labels().inc()`` costs several times that per
call, so ``Stats`` is instead a prometheus-client custom collector: ``collect`` reads the plain
counters into metric families at scrape time, and the client writes the text format.
Only route and target names from the config and a closed set of outcomes become labels.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from modelroute.sidecar.metrics.families import counter, gauge
from modelroute.sidecar.metrics.prom import CounterMetricFamily, HistogramMetricFamily, Metric

# Upper bounds in seconds (Prometheus `le`), fixed so scrapes from many pods aggregate.
BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LE = [repr(b) for b in BUCKETS] + ["+Inf"]  # the Prometheus "le" label of each bucket


class Histogram:
    __slots__ = ("count", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)   # per bucket, not cumulative; last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.sum += value
        self.count += 1

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding quantile ``q`` (None when empty or beyond the last bucket)."""
        if not self.count:
            return None
        rank, seen = q * self.count, 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank and n:
                return BUCKETS[i] if i < len(BUCKETS) else None
        return None

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, ``+Inf`` last: what ``HistogramMetricFamily.add_metric`` takes."""
        cum, out = 0, []
        for le, n in zip(LE, self.counts, strict=True):
            cum += n
            out.append((le, float(cum)))
        return out

    def as_json(self) -> dict[str, Any]:
        p50, p99 = self.quantile(0.5), self.quantile(0.99)
        return {
            "count": self.count,
            "sumSeconds": round(self.sum, 6),
            "buckets": {le: n for le, n in zip(LE, self.counts, strict=True) if n},
            "p50AtMostSeconds": p50,
            "p99AtMostSeconds": p99,
        }


class TargetStats:
    __slots__ = ("answered", "attempts", "completion_tokens", "dropped", "latency", "outcomes", "prompt_tokens")

    def __init__(self) -> None:
        self.attempts = 0
        self.answered = 0
        self.outcomes: dict[str, int] = {}
        self.dropped: dict[str, int] = {}  # param -> answers it was not sent for (the target refuses it)
        self.latency = Histogram()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "answered": self.answered,
            "outcomes": dict(self.outcomes),
            "latency": self.latency.as_json(),
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "droppedParams": dict(sorted(self.dropped.items())),
        }


class RouteStats:
    __slots__ = ("latency", "outcomes", "requests", "streamed", "targets")

    def __init__(self) -> None:
        self.requests = 0
        self.streamed = 0
        self.outcomes: dict[str, int] = {}
        self.latency = Histogram()
        self.targets: dict[str, TargetStats] = {}

    def target(self, name: str) -> TargetStats:
        ts = self.targets.get(name)
        if ts is None:
            ts = self.targets[name] = TargetStats()
        return ts

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "streamed": self.streamed,
            "outcomes": dict(self.outcomes),
            "latency": self.latency.as_json(),
            "targets": {name: t.as_json() for name, t in sorted(self.targets.items())},
        }


def _tokens(usage: dict[str, Any], *names: str) -> int:
    for n in names:
        v = usage.get(n)
        if isinstance(v, int):
            return v
    return 0


class Stats:
    """Implements ``modelroute.sidecar.routing.observer.Observer``; also counts requests rejected at the door."""

    def __init__(self) -> None:
        self.started = time.time()
        self.routes: dict[str, RouteStats] = {}
        self.rejected: dict[int, int] = {}       # HTTP status -> count, for requests that never reached a route
        self.config_version: str | None = None
        self.config_swaps = 0
        self.config_rejections = 0

    def route(self, name: str) -> RouteStats:
        rs = self.routes.get(name)
        if rs is None:
            rs = self.routes[name] = RouteStats()
        return rs

    # -- Observer -------------------------------------------------------------------------
    def on_attempt(
        self, route: str, target: str, outcome: str, status: int | None, latency_s: float, usage: dict[str, Any] | None
    ) -> None:
        ts = self.route(route).target(target)
        ts.attempts += 1
        ts.outcomes[outcome] = ts.outcomes.get(outcome, 0) + 1
        ts.latency.observe(latency_s)
        if usage:
            ts.prompt_tokens += _tokens(usage, "prompt_tokens", "input_tokens")
            ts.completion_tokens += _tokens(usage, "completion_tokens", "output_tokens")

    def on_request(self, route: str, target: str | None, outcome: str, latency_s: float, streamed: bool) -> None:
        rs = self.route(route)
        rs.requests += 1
        rs.outcomes[outcome] = rs.outcomes.get(outcome, 0) + 1
        rs.latency.observe(latency_s)
        if streamed:
            rs.streamed += 1
        if target is not None and outcome == "ok":
            rs.target(target).answered += 1

    def on_dropped(self, route: str, target: str, params: tuple[str, ...]) -> None:
        """Params the answering target refuses, left out of the request (x-modelroute-dropped-params)."""
        dropped = self.route(route).target(target).dropped
        for p in params:
            dropped[p] = dropped.get(p, 0) + 1

    # -- HTTP surface ----------------------------------------------------------------------
    def on_rejected(self, status: int) -> None:
        self.rejected[status] = self.rejected.get(status, 0) + 1

    def as_json(self) -> dict[str, Any]:
        return {
            "uptimeSeconds": round(time.time() - self.started, 3),
            "configVersion": self.config_version,
            "configSwaps": self.config_swaps,
            "configRejections": self.config_rejections,
            "rejected": {str(k): v for k, v in sorted(self.rejected.items())},
            "routes": {name: r.as_json() for name, r in sorted(self.routes.items())},
        }

    def collect(self) -> Iterator[Metric]:
        """The metric families at scrape time (a prometheus-client collector; the hot path never sees it)."""
        routes = sorted(self.routes.items())
        targets = [(r, t, ts) for r, rs in routes for t, ts in sorted(rs.targets.items())]
        yield counter("modelroute_requests", "Inbound requests per route and outcome.", ("route", "outcome"),
                      (((r, o), n) for r, rs in routes for o, n in sorted(rs.outcomes.items())))
        yield counter("modelroute_streamed_requests", "Inbound streaming requests per route.", ("route",),
                      (((r,), rs.streamed) for r, rs in routes))
        duration = HistogramMetricFamily("modelroute_request_duration_seconds", "Inbound request latency per route (to the last byte).",
                                         labels=("route",))
        for r, rs in routes:
            duration.add_metric((r,), rs.latency.buckets(), rs.latency.sum)
        yield duration
        yield counter("modelroute_attempts", "Upstream attempts per route, target and outcome.", ("route", "target", "outcome"),
                      (((r, t, o), n) for r, t, ts in targets for o, n in sorted(ts.outcomes.items())))
        yield counter("modelroute_answered", "Requests answered per route and target.", ("route", "target"),
                      (((r, t), ts.answered) for r, t, ts in targets))
        attempt_duration = HistogramMetricFamily("modelroute_attempt_duration_seconds", "Upstream attempt latency per route and target.",
                                                 labels=("route", "target"))
        for r, t, ts in targets:
            attempt_duration.add_metric((r, t), ts.latency.buckets(), ts.latency.sum)
        yield attempt_duration
        yield counter("modelroute_tokens", "Tokens reported by providers per route, target and kind.", ("route", "target", "kind"),
                      (row for r, t, ts in targets for row in (((r, t, "prompt"), ts.prompt_tokens), ((r, t, "completion"), ts.completion_tokens))))
        yield counter("modelroute_dropped_params",
                      "Request params not sent because the answering target refuses them, per route, target and param.",
                      ("route", "target", "param"),
                      (((r, t, p), n) for r, t, ts in targets for p, n in sorted(ts.dropped.items())))
        yield counter("modelroute_rejected_requests", "Inbound requests rejected before routing, per HTTP status.", ("status",),
                      (((str(status),), n) for status, n in sorted(self.rejected.items())))
        yield gauge("modelroute_config_info", "The config version being served (1 while loaded).", ("version",),
                    [((self.config_version,), 1)] if self.config_version is not None else [])
        yield CounterMetricFamily("modelroute_config_swaps", "Configs loaded since start.", value=self.config_swaps)
        yield CounterMetricFamily("modelroute_config_rejections", "Configs refused since start (invalid, unauthorized, stale).",
                                  value=self.config_rejections)
