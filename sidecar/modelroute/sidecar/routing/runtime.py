"""A config compiled for serving, and the holder that swaps it atomically.

``Runtime.build`` is the one compile step: it turns a validated ``SidecarConfig`` into
frozen routes, each with its targets in order (an adapter from the adapter factory: an SDK
client that builds requests and a transport, one aiohttp pool, that sends them; and a
circuit breaker) and its chain of stages (compiled by the ``Pipeline`` it is given); a route
with a rollout in progress also gets its canary revision (``routing.canary.Canary``: one
``RouteRuntime`` for live canary traffic, one for mirrored copies).
``RuntimeHolder`` serves one runtime at a time: a request leases the
current runtime for its whole life (streams included), so a swap never changes the config
under a request in flight; the old runtime's clients are closed once its last lease ends.

Across a swap, a target whose definition did not change keeps its SDK client, so its warm
connection pool survives an operator push, and so does a change of only the route's params
or system prompt: each (params, system) pair is a ``bound`` view of the one client-owning
adapter per target definition (building SDK clients costs milliseconds per target; in 50
sidecars on 2 cores a prompt edit used to take ~1.5 s to converge, a view costs microseconds).
A target's breaker is keyed by route, target definition and breaker settings, not by params
or prompt: it tracks the provider's health (only 429/5xx/timeouts/connection failures count),
which a prompt edit does not change, so an edit must not reset an open breaker nor forget
failures; a canary calling the same target on the same route shares it for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from modelroute.api.config import SidecarConfig, canonical_json
from modelroute.api.v1alpha1.spec import ModelRouteSpec, Target
from modelroute.api.v1alpha1.strategy import revision_of
from modelroute.sidecar.output import OutputContract
from modelroute.sidecar.providers.base import Adapter, KeyFn
from modelroute.sidecar.providers.registry import build_adapter
from modelroute.sidecar.routing.breaker import Breaker
from modelroute.sidecar.routing.call import Stage
from modelroute.sidecar.routing.canary import CANARY, MIRROR, STABLE, Canary, Variant
from modelroute.sidecar.routing.observer import AttemptHook, NullObserver, Observer
from modelroute.sidecar.routing.router import AdapterStep, Attempts
from modelroute.sidecar.translate.accepts import ParamFilter, param_filter
from modelroute.sidecar.translate.params import effective_params

log = logging.getLogger(__name__)

KeyFor = Callable[[Target], KeyFn | None]
"""Given a target, the callable returning its current API key (None: no key needed)."""

AdapterFactory = Callable[[Target, KeyFn | None], Adapter]
"""Builds the client-owning adapter of a target definition (default ``providers.registry.build_adapter``;
tests pass their own). Called once per target definition, not per params or prompt."""


class _SharedAdapter:
    """A client-owning adapter used by one or more runtimes (through ``bound`` views); closed when the last of them closes."""

    __slots__ = ("adapter", "refs")

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.refs = 0


@dataclass(frozen=True, eq=False)
class TargetRuntime:
    """One target of one route, ready to call."""

    target: Target
    adapter: Adapter
    breaker: Breaker
    accepts: ParamFilter | None = None  # params this target refuses (the adapter drops them); None: no rules

    @property
    def name(self) -> str:
        return self.target.name

    def dropped(self, request: dict[str, object]) -> tuple[str, ...]:
        """The params of ``request`` (and of the route) not sent to this target."""
        return self.accepts.dropped(request) if self.accepts is not None else ()


_UNSET: Stage = Attempts(())  # marks a chain left to RouteRuntime.__post_init__


@dataclass(frozen=True, eq=False)
class RouteRuntime:
    """One compiled route: its spec, its targets in fallback order, where attempts are reported, and its chain.

    ``chain`` is the route's request stages, in order, ending in the attempt loop over
    ``targets`` (``router.Attempts``), whose every target runs its own attempt steps
    (limiter, output contract, adapter). ``checked`` is the same chain with every answer
    checked against the request's contract (the task endpoints'); on a route with an
    output contract the two are one. Built once by ``Runtime.build`` (stages from its
    ``pipeline``); a route built without stages is the plain attempt loop over adapters.
    """

    spec: ModelRouteSpec
    resource: str                      # metadata.name of the ModelRoute
    targets: tuple[TargetRuntime, ...]
    observer: Observer
    revision: str = ""                 # revision_of(spec), or the canary's pushed revision id
    variant: Variant = STABLE          # which side of a rollout this runtime serves
    canary: Canary | None = None       # set on a stable route while a rollout runs
    tracer: AttemptHook | None = None  # telemetry (spans, GenAI metrics) per attempt; None: off
    contract: OutputContract | None = None  # the route's output contract (None: answers are not checked)
    chain: Stage = _UNSET              # unset: the plain attempt loop over the targets' adapters
    checked: Stage = _UNSET            # unset: ``chain``

    def __post_init__(self) -> None:
        if self.chain is _UNSET:
            object.__setattr__(self, "chain", Attempts(tuple((tr, AdapterStep(tr.adapter)) for tr in self.targets)))
        if self.checked is _UNSET:
            object.__setattr__(self, "checked", self.chain)

    @property
    def name(self) -> str:
        """The route name apps send as ``model``."""
        return self.spec.route

    @property
    def prompt_version(self) -> str | None:
        return self.spec.prompt.version if self.spec.prompt else None

    def dropped(self, target: str, request: dict[str, object]) -> tuple[str, ...]:
        """The params not sent to ``target`` (a target name of this route) for ``request``."""
        for tr in self.targets:
            if tr.name == target:
                return tr.dropped(request)
        return ()


@dataclass(frozen=True)
class Stages:
    """What a pipeline compiled for one route: the observer to report to, its contract and its two chains."""

    observer: Observer
    contract: OutputContract | None
    chain: Stage
    checked: Stage


class Pipeline(Protocol):
    """Compiles the request stages and attempt steps of each route (``pipeline.compiler.RouteCompiler``)."""

    def stages(self, spec: ModelRouteSpec, revision: str, variant: Variant, targets: tuple[TargetRuntime, ...],
               observer: Observer) -> Stages: ...


@dataclass(eq=False)
class Runtime:
    """A compiled config. ``routes`` maps route name -> ``RouteRuntime``; ``version`` is ``config.hash``."""

    config: SidecarConfig
    version: str
    routes: dict[str, RouteRuntime]
    _adapters: dict[str, _SharedAdapter] = field(default_factory=dict, repr=False)  # target.wire() -> owner
    _views: dict[str, Adapter] = field(default_factory=dict, repr=False)            # + params + system -> view
    _breakers: dict[str, Breaker] = field(default_factory=dict, repr=False)
    _inflight: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _closed: bool = False

    @classmethod
    def build(
        cls,
        config: SidecarConfig,
        key_for: KeyFor,
        observer: Observer,
        *,
        previous: Runtime | None = None,
        breaker_clock: Callable[[], float] | None = None,
        adapters: AdapterFactory = build_adapter,
        pipeline: Pipeline | None = None,
        tracer: AttemptHook | None = None,
    ) -> Runtime:
        """Compile ``config``: the one compile step. Synchronous and I/O-free except SDK client construction.

        Every route (stable, canary, mirror) comes out frozen with its chain: ``pipeline``
        compiles its stages (cache, limits, output contract, cost; None: the plain attempt
        loop), ``tracer`` gets every attempt (None: telemetry off), ``adapters`` builds the
        client-owning adapter of each new target definition.

        ``key_for(target)`` is called once per target (at build time) and must return the
        key callable or None; it may raise (e.g. a missing env var) and the error
        propagates, so validate keys before building. ``previous`` (the runtime being
        replaced) lets unchanged targets keep their SDK client and breaker (params and
        prompt changes included: they only derive a new ``bound`` view).
        Raises whatever ``adapters`` raises (nothing is leaked: SDK clients open their
        connection pools lazily, on their first request). A runtime built with
        ``previous`` shares that runtime's adapters: serve it (``RuntimeHolder.swap``) or
        ``await new.aclose()`` it, so shared clients are closed exactly when the last user goes.
        """
        owners: dict[str, _SharedAdapter] = {}
        views: dict[str, Adapter] = {}
        breakers: dict[str, Breaker] = {}
        routes: dict[str, RouteRuntime] = {}

        def owner(target: Target) -> tuple[str, _SharedAdapter]:
            """The client-owning adapter of this target definition: this build's, the previous runtime's, or new."""
            tkey = canonical_json(target.wire()).decode()
            shared = owners.get(tkey)
            if shared is None:
                shared = previous._adapters.get(tkey) if previous is not None else None
                if shared is None:
                    shared = _SharedAdapter(adapters(target, key_for(target)))
                shared.refs += 1
                owners[tkey] = shared
            return tkey, shared

        def compile_targets(spec: ModelRouteSpec) -> tuple[TargetRuntime, ...]:
            system = spec.prompt.system if spec.prompt else None
            cb_key = canonical_json(spec.circuit_breaker.wire()).decode()
            targets: list[TargetRuntime] = []
            for target in spec.targets:
                params = effective_params(spec.params, target)
                tkey, shared = owner(target)
                vkey = f"{tkey}\n{canonical_json({'params': params.wire(), 'system': system}).decode()}"
                view = views.get(vkey)
                if view is None and previous is not None:
                    view = previous._views.get(vkey)  # unchanged: the very same adapter object as before
                if view is None:
                    view = shared.adapter.bound(params, system)
                views[vkey] = view
                bkey = f"{spec.route}\n{tkey}\n{cb_key}"
                breaker = breakers.get(bkey)  # a canary calling the very same target shares its breaker
                if breaker is None and previous is not None:
                    breaker = previous._breakers.get(bkey)
                if breaker is None:
                    breaker = (
                        Breaker(spec.circuit_breaker, breaker_clock)
                        if breaker_clock is not None
                        else Breaker(spec.circuit_breaker)
                    )
                breakers[bkey] = breaker
                targets.append(TargetRuntime(target, view, breaker, param_filter(target, params)))
            return tuple(targets)

        def compile_route(spec: ModelRouteSpec, resource: str, targets: tuple[TargetRuntime, ...], observer: Observer,
                          revision: str, variant: Variant, canary: Canary | None = None) -> RouteRuntime:
            if pipeline is None:
                return RouteRuntime(spec, resource, targets, observer, revision, variant, canary, tracer)
            s = pipeline.stages(spec, revision, variant, targets, observer)
            return RouteRuntime(spec, resource, targets, s.observer, revision, variant, canary, tracer, s.contract,
                                s.chain, s.checked)

        try:
            resources = {r.spec.route: r.metadata.name for r in config.routes}
            canaries: dict[str, Canary] = {}
            for c in config.canaries:
                resource = resources.get(c.route)
                if resource is None or c.route in canaries:
                    raise ValueError(f"canary of route {c.route!r}: no such route, or a second canary for it")
                targets = compile_targets(c.spec)
                live = compile_route(c.spec, resource, targets, observer, c.revision, CANARY)
                # Mirrored copies are not inbound requests: they go to the rollout evidence only.
                shadow = compile_route(c.spec, resource, targets, NullObserver(), c.revision, MIRROR)
                canaries[c.route] = Canary(c.revision, c.run_id, c.weight, c.mirror, c.sticky_header, live, shadow)
            for r in config.routes:
                spec = r.spec
                routes[spec.route] = compile_route(spec, r.metadata.name, compile_targets(spec), observer,
                                                   revision_of(spec), STABLE, canaries.get(spec.route))
        except BaseException:
            for shared in owners.values():  # a failed build holds nothing: the previous runtime's clients stay its own
                shared.refs -= 1
            raise
        rt = cls(config=config, version=config.hash, routes=routes, _adapters=owners, _views=views, _breakers=breakers)
        rt._idle.set()
        return rt

    def route(self, name: str) -> RouteRuntime | None:
        return self.routes.get(name)

    @contextlib.contextmanager
    def hold(self) -> Iterator[Runtime]:
        """Keep this runtime's clients open (as a request's lease does) for work that outlives a request."""
        self._acquire()
        try:
            yield self
        finally:
            self._release()

    @property
    def inflight(self) -> int:
        """Requests currently leasing this runtime."""
        return self._inflight

    def _acquire(self) -> None:
        self._inflight += 1
        self._idle.clear()

    def _release(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()

    async def drained(self) -> None:
        """Wait until no request leases this runtime."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Close the adapters no other runtime uses. Call once no request is in flight."""
        if self._closed:
            return
        self._closed = True
        for shared in self._adapters.values():
            shared.refs -= 1
            if shared.refs == 0:
                try:
                    await shared.adapter.aclose()
                except Exception:  # one client failing to close must not leak the others
                    log.warning("closing adapter of target %s failed", shared.adapter.target.name, exc_info=True)


class Lease:
    """``RuntimeHolder.lease()``: holds a runtime for a ``with`` block (a class, not a generator:
    it runs on every request)."""

    __slots__ = ("_rt",)

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def __enter__(self) -> Runtime:
        self._rt._acquire()
        return self._rt

    def __exit__(self, *exc: object) -> None:
        self._rt._release()


class NotReady(RuntimeError):
    """No config is loaded yet (``/readyz`` is false; inbound requests get 503)."""


class RuntimeHolder:
    """The runtime being served, swapped atomically.

    Inbound handlers::

        with holder.lease() as runtime:          # raises NotReady before the first config
            route = runtime.route(name)
            ... await router.complete(route, body) / open_stream + iterate the stream ...

    Admin ``PUT /config``: build a ``Runtime`` (``previous=holder.current``), then
    ``holder.swap(new)``. New requests see ``new`` at once; requests holding a lease on the
    old runtime finish on it, and its clients are closed in the background when drained.
    ``await holder.aclose()`` at shutdown closes the current runtime after it drains.
    """

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._current = runtime
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def current(self) -> Runtime | None:
        return self._current

    def lease(self) -> Lease:
        """The current runtime, kept alive (not closed) until the ``with`` block ends."""
        rt = self._current
        if rt is None:
            raise NotReady("no config loaded")
        return Lease(rt)

    def swap(self, new: Runtime) -> Runtime | None:
        """Serve ``new`` from now on; retire the old runtime (closed once drained). Returns the old one."""
        old, self._current = self._current, new
        if old is not None and old is not new:
            task = asyncio.get_running_loop().create_task(self._retire(old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return old

    @staticmethod
    async def _retire(old: Runtime) -> None:
        await old.drained()
        await old.aclose()

    async def retired(self) -> None:
        """Return once every runtime swapped out so far has drained and been closed."""
        while self._retiring:
            await asyncio.wait(set(self._retiring))

    async def aclose(self, grace: float | None = 30.0) -> None:
        """Shutdown: wait (up to ``grace`` seconds) for in-flight requests, then close every runtime."""
        current, self._current = self._current, None
        if current is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(current.drained(), grace)
            await current.aclose()
        if self._retiring:
            _, pending = await asyncio.wait(set(self._retiring), timeout=grace)
            for task in pending:
                task.cancel()
