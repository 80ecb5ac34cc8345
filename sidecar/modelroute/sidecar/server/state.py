"""What the sidecar is serving right now, and the one place a new config is swapped in.

Every inbound request leases the runtime (``RuntimeHolder.lease``) when it starts and keeps it
until its last byte, so a swap never changes the config under a request in flight; the old
runtime's SDK clients are closed by the holder after its last lease ends.

Configs arrive from three sources: ``--config`` files at start, the signed route bundle
mounted from the cluster, and ``PUT /config``. ``apply`` validates (all problems at once),
compiles, and swaps under one lock; on any problem the old config keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from modelroute.api.config import SidecarConfig
from modelroute.sidecar.config import loader
from modelroute.sidecar.config.loader import ConfigError
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.metrics.prom import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric
from modelroute.sidecar.metrics.stats import Stats
from modelroute.sidecar.pipeline.compiler import Planner
from modelroute.sidecar.pipeline.counters import Ledger
from modelroute.sidecar.pipeline.quotas import QuotaBook
from modelroute.sidecar.providers.registry import build_adapter
from modelroute.sidecar.rollout.evidence import Evidence
from modelroute.sidecar.rollout.mirror import DEFAULT_LIMIT, MirrorPool
from modelroute.sidecar.routing.observer import Observer
from modelroute.sidecar.routing.runtime import AdapterFactory, Runtime, RuntimeHolder
from modelroute.sidecar.server import memory
from modelroute.sidecar.server.floor import FloorFile, aware

if TYPE_CHECKING:
    from modelroute.sidecar.metrics.telemetry import Telemetry  # the OTel SDK is imported only when enabled

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Provenance:
    """Where the config being served came from."""

    version: str
    source: str                        # "file", "bundle" or "push"
    issued_at: datetime | None = None  # signed configs only
    loaded_at: float = 0.0


@dataclass(frozen=True)
class Applied:
    version: str
    changed: bool


class SidecarState:
    """The served config (a ``RuntimeHolder``) and its provenance; shared by both apps and the bundle watcher."""

    def __init__(
        self,
        *,
        adapters: AdapterFactory = build_adapter,
        keys: KeyResolver | None = None,
        stats: Stats | None = None,
        max_body_bytes: int = 4 * 1024 * 1024,
        telemetry: Telemetry | None = None,
        mirror_limit: int = DEFAULT_LIMIT,
        floor_file: FloorFile | None = None,
    ) -> None:
        self.adapters = adapters                  # builds each target's adapter (tests pass their own)
        self.keys = keys or KeyResolver()
        self.stats = stats or Stats()
        self.max_body_bytes = max_body_bytes
        self.telemetry = telemetry                # None: tracing off, zero cost on the hot path
        self.evidence = Evidence()                # rollout counters per route, run and variant
        self.mirrors = MirrorPool(self.evidence, mirror_limit)
        self.planner = Planner()              # limits, caches, cost ledger: kept across config swaps
        self.quotas = QuotaBook(self.planner.limiters)  # ProviderQuota leases: caps on the governed limiters
        self._quota_timer: asyncio.TimerHandle | None = None
        self.holder = RuntimeHolder()
        self.provenance: Provenance | None = None
        self.draining = False
        self.last_push_at: datetime | None = None      # newest accepted operator push (the replay floor)
        self.last_bundle_at: datetime | None = None    # newest bundle loaded
        self.floor_file = floor_file                   # the replay floor across container restarts
        self.restored_floor = floor_file.load() if floor_file is not None else None
        self.started = time.time()
        self._lock = asyncio.Lock()
        # GET /metrics: this sidecar's own registry (never the process-global one), read at scrape time.
        self.registry = CollectorRegistry(auto_describe=False)
        for collector in (self.stats, self.evidence, self.planner.ledger, self.quotas, ServingCollector(self)):
            self.registry.register(collector)

    # -- reading -----------------------------------------------------------------------------
    def current(self) -> Runtime | None:
        return self.holder.current

    @property
    def ready(self) -> bool:
        return self.holder.current is not None and not self.draining

    @property
    def loaded_at(self) -> float:
        return self.provenance.loaded_at if self.provenance is not None else self.started

    def replay_floor(self) -> datetime | None:
        """A push must not be older than this: the newest signed config applied, here or before a restart."""
        found = [aware(t) for t in (self.last_push_at, self.last_bundle_at, self.restored_floor) if t is not None]
        return max(found, default=None)

    def inflight(self) -> int:
        rt = self.holder.current
        return rt.inflight if rt is not None else 0

    def build_private(self, config: SidecarConfig, observer: Observer, ledger: Ledger | None = None) -> Runtime:
        """A runtime off the live path (the gate, eval): the routes' contracts, repair, limits (the live limiters)
        and cost, with no cache and a ledger of its own, so neither live answers nor live counters mix in. A config
        without a registry gets the served config's (the operator's registry, windows included)."""
        live = self.holder.current
        registry = config.model_registry or (live.config.model_registry if live is not None else None)
        return Runtime.build(config, self.keys.source_for, observer, adapters=self.adapters,
                             pipeline=self.planner.compiler(cache=False, ledger=ledger or Ledger(), registry=registry))

    # -- writing -----------------------------------------------------------------------------
    @property
    def lock(self) -> asyncio.Lock:
        """Held while a config is checked and swapped (callers may hold it across their own checks)."""
        return self._lock

    async def apply(self, config: SidecarConfig, *, source: str, issued_at: datetime | None = None) -> Applied:
        async with self._lock:
            return self.apply_locked(config, source=source, issued_at=issued_at)

    def apply_locked(self, config: SidecarConfig, *, source: str, issued_at: datetime | None = None) -> Applied:
        """Validate, compile and swap in ``config``; the caller holds ``lock``. Raises ``ConfigError``.

        Synchronous on purpose: no request can observe a half-applied config.
        """
        found = loader.problems(config, self.keys)
        if found:
            self.stats.config_rejections += 1
            raise ConfigError(found)
        version = config.hash
        old = self.holder.current
        if old is not None and old.version == version:
            # Same content: keep the warm runtime; remember the newer provenance.
            self._note(version, source, issued_at)
            return Applied(version, changed=False)
        self._swap_in(config, old)
        self._note(version, source, issued_at)
        self.stats.config_version = version
        self.stats.config_swaps += 1
        log.info("serving config %s from %s (routes: %s)", version, source,
                 ", ".join(sorted(r.spec.route for r in config.routes)) or "none")
        return Applied(version, changed=True)

    def _swap_in(self, config: SidecarConfig, old: Runtime | None) -> None:
        """Compile ``config`` (reusing ``old``'s clients) and serve it; raises ``ConfigError``, serving ``old`` still."""
        compiler = self.planner.compiler(registry=config.registry())
        try:
            runtime = Runtime.build(config, self.keys.source_for, self.stats, previous=old, adapters=self.adapters,
                                    pipeline=compiler, tracer=self.telemetry)
        except Exception as e:  # a target the runtime cannot build is a config problem, not a crash
            self.stats.config_rejections += 1
            log.warning("cannot compile config %s: %s: %s", config.hash, type(e).__name__, e)
            raise ConfigError([f"config {config.hash}: cannot be compiled: {type(e).__name__}: {e}"]) from None
        self.planner.adopt(compiler)            # the ledger lists this config's limiters and prompt versions
        self.evidence.configure(config.canaries)
        self.holder.swap(runtime)
        memory.settle()  # a new SDK's objects leave the collector's generations

    def _note(self, version: str, source: str, issued_at: datetime | None) -> None:
        self.provenance = Provenance(version, source, issued_at, time.time())
        if issued_at is None:
            return
        if source == "push" and (self.last_push_at is None or issued_at > self.last_push_at):
            self.last_push_at = issued_at
        if source == "bundle" and (self.last_bundle_at is None or issued_at > self.last_bundle_at):
            self.last_bundle_at = issued_at
        if self.floor_file is not None and source in ("push", "bundle"):
            floor = self.replay_floor()
            if floor is not None and floor == aware(issued_at):  # a new high: persist it
                self.floor_file.save(floor, version)

    def quotas_changed(self, new_quota: bool) -> None:
        """After leases or bundle terms changed (caller holds ``lock``): recompile when a quota is new
        (its targets may need a limiter), set every cap, and time the next change of a cap."""
        self.refresh_quotas()  # first: the limiters learn the quota, so compiling finds the targets it governs
        rt = self.holder.current
        if new_quota and rt is not None:  # the same config, recompiled: a governed limiter takes its cap when it is created
            try:
                self._swap_in(rt.config, rt)
            except ConfigError as e:
                log.warning("quota change: the config could not be recompiled, limits unchanged until the next push: %s", e)

    def refresh_quotas(self) -> None:
        """Set the caps for now; a timer does it again when the next lease expires (no work per request)."""
        following = self.quotas.refresh()
        if self._quota_timer is not None:
            self._quota_timer.cancel()
            self._quota_timer = None
        if following is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._quota_timer = loop.call_later(max(0.0, following - self.quotas.wall()) + 0.001, self.refresh_quotas)

    # -- shutdown ----------------------------------------------------------------------------
    async def drain(self, grace: float) -> bool:
        """Stop being ready and wait up to ``grace`` seconds for requests in flight. True if drained."""
        self.draining = True
        await self.mirrors.aclose()  # shadow copies must not hold the drain up
        rt = self.holder.current
        if rt is None:
            return True
        try:
            async with asyncio.timeout(grace):
                await rt.drained()
        except TimeoutError:
            return False
        return True

    async def aclose(self, grace: float = 5.0) -> None:
        """Close every runtime (after at most ``grace`` seconds of draining)."""
        if self._quota_timer is not None:
            self._quota_timer.cancel()
        await self.mirrors.aclose()
        await self.holder.aclose(grace)


STATE = web.AppKey("modelroute_state", SidecarState)


class ServingCollector:
    """``/metrics`` families of the state itself: readiness, requests in flight, the mirror pool."""

    def __init__(self, state: SidecarState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state
        yield GaugeMetricFamily("modelroute_ready", "Whether the sidecar serves a config (1) or not (0).", value=1 if state.ready else 0)
        yield GaugeMetricFamily("modelroute_inflight_requests", "Inbound requests in flight on the current config.", value=state.inflight())
        yield GaugeMetricFamily("modelroute_mirror_inflight", "Mirror copies to canaries in flight.", value=state.mirrors.inflight)
        yield CounterMetricFamily("modelroute_mirror_dropped", "Mirror copies dropped because the mirror pool was full.",
                                  value=state.mirrors.dropped)
