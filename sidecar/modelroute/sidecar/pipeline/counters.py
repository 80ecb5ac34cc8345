"""Counters of the request pipeline's stages: cost, output checks, local limits, cache; for ``/stats`` and ``/metrics``.

Kept apart from ``stats.py`` (the routing counters) so that a route without an output
contract, a cache or limits never touches it on its hot path; only cost is recorded for
every route, by ``CostObserver``, which wraps the route's observer and adds a dict update
and a few multiplications per attempt that reported usage.

``merge_json`` adds these counters into the ``/stats`` JSON of ``Stats.as_json`` (per route:
``promptVersion``, ``cost``, ``output``, ``cache``; per target: ``costUsd``, ``limits``);
``collect`` yields the extra metric families at scrape time (a prometheus-client collector). Label values are route and target names
from the config and closed sets (output results, limit dimensions) only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelroute.sidecar.metrics.families import counter, gauge
from modelroute.sidecar.metrics.prom import Metric
from modelroute.sidecar.pipeline.cost import Price, cost_of
from modelroute.sidecar.routing.observer import Observer

if TYPE_CHECKING:
    from modelroute.sidecar.pipeline.cache import ResponseCache
    from modelroute.sidecar.pipeline.limits import TargetLimiter

Json = dict[str, Any]
log = logging.getLogger(__name__)

# Results of an output check, per route (``output`` in /stats).
VALID = "valid"          # the first answer met the contract
REPAIRED = "repaired"    # an answer met it after one or more repair turns
INVALID = "invalid"      # a target's answers never met it (the request fell back)
REJECTED = "rejected"    # no target produced a valid answer: the app got a 422
OUTPUT_RESULTS = (VALID, REPAIRED, INVALID, REJECTED)


class CostCell:
    """Cost of one route's target: its price (updated on each config) and the running totals."""

    __slots__ = ("attempts", "price", "usd")

    def __init__(self, price: Price) -> None:
        self.price = price
        self.usd = 0.0
        self.attempts = 0

    def add(self, usage: Json) -> None:
        """One attempt's usage (this runs once per attempt on every route)."""
        self.usd += cost_of(self.price, usage)
        self.attempts += 1


@dataclass
class RouteLedger:
    unpriced_attempts: int = 0
    cells: dict[str, CostCell] = field(default_factory=dict)  # target -> its cost
    output: dict[str, int] = field(default_factory=dict)
    limited: dict[str, int] = field(default_factory=dict)  # target -> requests refused by its local limit

    @property
    def cost_usd(self) -> float:
        return sum(c.usd for c in self.cells.values())

    @property
    def priced_attempts(self) -> int:
        return sum(c.attempts for c in self.cells.values())

    @property
    def target_cost(self) -> dict[str, float]:
        return {t: c.usd for t, c in self.cells.items() if c.attempts}


class Ledger:
    """Per-route counters of the pipeline stages, for the sidecar's lifetime (they survive config swaps)."""

    def __init__(self) -> None:
        self.routes: dict[str, RouteLedger] = {}
        self.caches: dict[str, ResponseCache] = {}                     # route -> its cache (see compiler.RouteCompiler)
        self.limiters: dict[tuple[str, str], TargetLimiter] = {}       # (route, target) -> limiter, current config
        self.prompt_versions: dict[str, str] = {}                      # route -> prompt version, current config

    def route(self, name: str) -> RouteLedger:
        rl = self.routes.get(name)
        if rl is None:
            rl = self.routes[name] = RouteLedger()
        return rl

    def cost_cell(self, route: str, target: str, price: Price) -> CostCell:
        """The running cost of a route's target, priced at ``price`` from now on (totals survive swaps)."""
        cells = self.route(route).cells
        cell = cells.get(target)
        if cell is None:
            cell = cells[target] = CostCell(price)
        cell.price = price
        return cell

    def output(self, route: str, result: str) -> None:
        out = self.route(route).output
        out[result] = out.get(result, 0) + 1

    def limited(self, route: str, target: str) -> None:
        lim = self.route(route).limited
        lim[target] = lim.get(target, 0) + 1

    # -- /stats -------------------------------------------------------------------------------
    def merge_json(self, stats: Json) -> Json:
        """``stats`` (``Stats.as_json()``) with the pipeline counters added per route and target."""
        routes: Json = stats.setdefault("routes", {})
        names = set(routes) | set(self.routes) | set(self.caches) | set(self.prompt_versions)
        for name in names:
            r: Json = routes.setdefault(name, {"targets": {}})
            targets: Json = r.setdefault("targets", {})
            r["promptVersion"] = self.prompt_versions.get(name)
            rl = self.routes.get(name) or RouteLedger()
            requests = r.get("requests") or 0
            r["cost"] = {
                "totalUsd": round(rl.cost_usd, 9),
                "perRequestUsd": round(rl.cost_usd / requests, 9) if requests else None,
                "pricedAttempts": rl.priced_attempts,
                "unpricedAttempts": rl.unpriced_attempts,
            }
            r["output"] = {k: rl.output.get(k, 0) for k in OUTPUT_RESULTS}
            cache = self.caches.get(name)
            r["cache"] = cache.snapshot() if cache is not None else None
            for target, usd in rl.target_cost.items():
                targets.setdefault(target, {})["costUsd"] = round(usd, 9)
            for target, n in rl.limited.items():
                targets.setdefault(target, {})["limitRefusals"] = n
        for (route, target), limiter in self.limiters.items():
            routes.setdefault(route, {"targets": {}}).setdefault("targets", {}).setdefault(target, {})["limits"] = limiter.snapshot().model_dump(mode="json", by_alias=True)
        return stats

    # -- /metrics -----------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """The pipeline's metric families at scrape time (a prometheus-client collector)."""
        routes = sorted(self.routes.items())
        yield counter("modelroute_cost_usd", "Cost of upstream attempts in USD (price table x reported usage) per route and target.",
                      ("route", "target"), (((r, t), usd) for r, rl in routes for t, usd in sorted(rl.target_cost.items())))
        yield counter("modelroute_unpriced_attempts", "Attempts with usage on a model that has no price.", ("route",),
                      (((r,), rl.unpriced_attempts) for r, rl in routes))
        yield counter("modelroute_output_checks", "Output contract results per route (valid, repaired, invalid, rejected).",
                      ("route", "result"), (((r, k), rl.output[k]) for r, rl in routes for k in OUTPUT_RESULTS if k in rl.output))
        yield counter("modelroute_limit_refusals", "Requests a target's local rate limit sent to the next target.", ("route", "target"),
                      (((r, t), n) for r, rl in routes for t, n in sorted(rl.limited.items())))
        caches = sorted(self.caches.items())
        yield counter("modelroute_cache_requests", "Response cache lookups per route and result (hit, miss).", ("route", "result"),
                      (row for r, c in caches for row in (((r, "hit"), c.hits), ((r, "miss"), c.misses))))
        yield gauge("modelroute_cache_hit_ratio", "Response cache hits / lookups per route.", ("route",),
                    (((r,), c.hit_ratio) for r, c in caches))
        yield gauge("modelroute_cache_entries", "Entries held by the route's response cache.", ("route",),
                    (((r,), len(c)) for r, c in caches))
        used = [(r, t, lim.utilisation(), lim.pressure_threshold) for (r, t), lim in sorted(self.limiters.items())]
        yield gauge("modelroute_quota_utilisation", "Fraction of a target's per-minute quota in use (requests, tokens).",
                    ("route", "target", "dimension"), (((r, t, d), v) for r, t, u, _ in used for d, v in sorted(u.items())))
        yield gauge("modelroute_quota_pressure", "1 while any quota of the target is at or above 80%.", ("route", "target"),
                    (((r, t), 1 if max(u.values()) >= threshold else 0) for r, t, u, threshold in used))
        yield gauge("modelroute_prompt_info", "The prompt version each route serves (1 while loaded).", ("route", "version"),
                    (((r, v), 1) for r, v in sorted(self.prompt_versions.items())))


class CostObserver:
    """An ``Observer`` that adds each attempt's cost to the ledger, then forwards to the wrapped one."""

    __slots__ = ("_cells", "_inner", "_ledger")

    def __init__(self, inner: Observer, ledger: Ledger, route: str, prices: dict[str, Price | None]) -> None:
        self._inner = inner
        self._ledger = ledger
        # target name -> its cost cell; targets without a price are counted as unpriced
        self._cells = {t: ledger.cost_cell(route, t, p) for t, p in prices.items() if p is not None}

    @property
    def inner(self) -> Observer:
        return self._inner

    def spent(self) -> float | None:
        """USD counted through this observer's route so far (None: no target has a price)."""
        return sum(c.usd for c in self._cells.values()) if self._cells else None

    def cost(self, target: str, usage: Json | None) -> float | None:
        """USD of one attempt's usage on ``target`` (None: no price), without counting it: for traces."""
        cell = self._cells.get(target)
        if cell is None or not usage:
            return None
        return cost_of(cell.price, usage)

    def on_attempt(
        self, route: str, target: str, outcome: str, status: int | None, latency_s: float, usage: dict[str, Any] | None
    ) -> None:
        self._inner.on_attempt(route, target, outcome, status, latency_s, usage)
        if usage:
            cell = self._cells.get(target)
            if cell is not None:
                cell.add(usage)
            else:
                self._ledger.route(route).unpriced_attempts += 1

    def on_request(self, route: str, target: str | None, outcome: str, latency_s: float, streamed: bool) -> None:
        self._inner.on_request(route, target, outcome, latency_s, streamed)


def pressure_logger(where: Callable[[str], Iterable[str]]) -> Callable[[str, str, float], None]:
    """The limiters' ``on_pressure``: one warning per crossing of 80% of a quota."""
    def warn(key: str, dimension: str, utilisation: float) -> None:
        users = ", ".join(where(key)) or key
        log.warning("quota pressure: %s at %.0f%% of its %s-per-minute limit (%s)", key, utilisation * 100, dimension, users)
    return warn


