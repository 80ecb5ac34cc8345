"""Compiling each route's chain of stages: the pipeline part of the one compile step.

``Runtime.build`` (routing) compiles targets, adapters, breakers and canaries, and asks its
``Pipeline`` for each route's stages: a ``RouteCompiler`` from ``Planner.compiler``. The
compiler reads the route's spec (output contract, cache policy, target limits, prices) and
returns the route's two chains (``stages``: ``chain`` for the chat APIs, ``checked`` for the
task endpoints) and its observer (cost accounting wrapped around it). Nothing is mutated
after the build: a new config is a new build.

``Planner`` holds what lives as long as the sidecar: the limiters (one per provider key, so
every route, revision and the gate share them), the per-route caches and the ledger. A
compile for live traffic is adopted once its build succeeded (``Planner.adopt``: the ledger
then lists that config's limiters and prompt versions); the gate and eval compile with
``cache=False`` and a ledger of their own: the route's contract, repair, limits and cost
apply, and no cached answer is ever counted as the revision's.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from modelroute.api.v1alpha1.quota import Limits
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.api.v1alpha1.spec import ModelRouteSpec, Target
from modelroute.sidecar.output import OutputContract
from modelroute.sidecar.pipeline.cache import ResponseCache
from modelroute.sidecar.pipeline.cost import PriceTable, target_price
from modelroute.sidecar.pipeline.counters import CostObserver, Ledger, pressure_logger
from modelroute.sidecar.pipeline.limits import SYSTEM_CLOCK, Clock, Limiters, TargetLimiter
from modelroute.sidecar.pipeline.stages import Cached, Checked, ContractStep, LimitedStep
from modelroute.sidecar.pipeline.windows import WindowStep, estimate_text
from modelroute.sidecar.routing.call import Stage, Step
from modelroute.sidecar.routing.canary import MIRROR, Variant
from modelroute.sidecar.routing.observer import Observer
from modelroute.sidecar.routing.router import AdapterStep, Attempts
from modelroute.sidecar.routing.runtime import Stages, TargetRuntime

log = logging.getLogger(__name__)

_LIMITS = "limits"  # the transport header observer that feeds a target's limiter


class Planner:
    """The sidecar-lifetime part of the pipeline: limiters, per-route caches and the ledger."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, ledger: Ledger | None = None, prices: PriceTable | None = None) -> None:
        self.ledger = ledger or Ledger()
        self.prices = prices or PriceTable()
        self._users: dict[str, list[str]] = {}          # limiter key -> "route/target" names using it
        self.limiters = Limiters(clock=clock, on_pressure=pressure_logger(lambda key: self._users.get(key, ())))

    def compiler(self, *, cache: bool = True, ledger: Ledger | None = None,
                 registry: ModelRegistry | None = None) -> RouteCompiler:
        """A compile of one config's routes (``Runtime.build(pipeline=...)``); ``cache=False`` and a ``ledger``
        of its own for the gate and eval; ``registry``: the config's, for context windows (None: built-in)."""
        return RouteCompiler(self, ledger or self.ledger, cache=cache, registry=registry)

    def adopt(self, compiler: RouteCompiler) -> None:
        """The config ``compiler`` compiled is served now: list its limiters and prompt versions."""
        self._users = compiler.users
        self.ledger.limiters = compiler.limiter_table
        self.ledger.prompt_versions = compiler.prompt_versions


class RouteCompiler:
    """Compiles each route's chain (a ``routing.runtime.Pipeline``); see the module docstring."""

    def __init__(self, planner: Planner, ledger: Ledger, *, cache: bool, registry: ModelRegistry | None = None) -> None:
        self.planner = planner
        self.registry = registry or ModelRegistry()
        self.ledger = ledger
        self.cache = cache
        self.users: dict[str, list[str]] = {}
        self.limiter_table: dict[tuple[str, str], TargetLimiter] = {}
        self.prompt_versions: dict[str, str] = {}

    def stages(self, spec: ModelRouteSpec, revision: str, variant: Variant, targets: tuple[TargetRuntime, ...],
               observer: Observer) -> Stages:
        name = spec.route
        ledger = self.ledger
        if spec.prompt is not None and spec.prompt.version is not None:
            self.prompt_versions[name] = spec.prompt.version
        if variant != MIRROR:  # mirrored copies are not the route's traffic
            prices = {tr.name: target_price(tr.target, self.planner.prices) for tr in targets}
            observer = CostObserver(observer, ledger, name, prices)
        contract = OutputContract.from_api(spec.output) if spec.output is not None else None
        if contract is not None and not contract.constrains:
            contract = None
        plain: list[tuple[TargetRuntime, Step]] = []
        checked: list[tuple[TargetRuntime, Step]] = []
        for tr in targets:
            step: Step = AdapterStep(tr.adapter)
            check: Step = ContractStep(step, tr.target.provider, ledger)
            limiter = self._limiter(name, tr, variant)
            if limiter is not None:
                step = LimitedStep(step, limiter, ledger, tr.name)
                check = LimitedStep(check, limiter, ledger, tr.name)
            window = self.registry.window(tr.target.provider, tr.target.model)
            if window is not None or tr.target.when is not None:  # the pre-check comes first: a skip takes no tokens
                system = spec.prompt.system if spec.prompt is not None else None
                cap = spec.params.merged(tr.target.params).max_tokens
                pre = functools.partial(WindowStep, label=tr.target.model, window=window, when=tr.target.when,
                                        extra=estimate_text(system), output_cap=cap)
                step, check = pre(step), pre(check)
            plain.append((tr, step))
            checked.append((tr, check))
        checked_chain = Checked(self._cached(spec, revision, Attempts(tuple(checked))), ledger)
        chain = checked_chain if contract is not None else self._cached(spec, revision, Attempts(tuple(plain)))
        return Stages(observer, contract, chain, checked_chain)

    def _cached(self, spec: ModelRouteSpec, revision: str, inner: Stage) -> Stage:
        policy = spec.cache
        if not self.cache or policy is None or not policy.enabled:
            return inner
        caches = self.ledger.caches
        cache = caches.get(spec.route)
        if cache is None:
            cache = caches[spec.route] = ResponseCache(max_entries=policy.max_entries, ttl=policy.ttl_seconds)
        cache.max_entries = policy.max_entries
        return Cached(inner, cache, revision, float(policy.ttl_seconds), bool(policy.include_sampled),
                      spec.params.temperature)

    def _limiter(self, route: str, tr: TargetRuntime, variant: Variant) -> TargetLimiter | None:
        limits = tr.target.limits
        if limits is None:
            if not self.planner.limiters.governed(tr.target):
                return None
            limits = Limits()  # a ProviderQuota's lease alone limits it
        key = limiter_key(tr.target)
        limiter = self.planner.limiters.get(key, requests_per_minute=limits.requests_per_minute,
                                            tokens_per_minute=limits.tokens_per_minute, max_wait=limits.max_wait_ms / 1000,
                                            target=tr.target)
        limiter.price = target_price(tr.target, self.planner.prices)
        self.users.setdefault(key, []).append(f"{route}/{tr.name}")
        if variant != MIRROR:
            self.limiter_table[(route, tr.name)] = limiter
        _report_headers(tr, limiter)
        return limiter


def limiter_key(target: Target) -> str:
    """What a provider limits: provider, endpoint, model and key reference (never the key itself)."""
    ref = target.api_key.wire() if target.api_key is not None else {}
    return f"{target.provider.value}:{target.model}@{target.base_url or 'default'}#{json.dumps(ref, sort_keys=True)}"


def _report_headers(tr: TargetRuntime, limiter: TargetLimiter) -> None:
    """Let the target's transport feed every response's rate-limit headers to ``limiter``.

    Every adapter sends through a ``providers.transport.Transport``, whose header observers
    see the headers of every answer (errors and streams included) before the body is read.
    The transport, not the adapter, is marked: one transport serves every ``bound`` view of
    its target (other params or prompts, other runtimes) and is hooked once; the limiter of
    a given key is the same object for the sidecar's life, and one target has one limiter key.
    """
    transport = getattr(tr.adapter, "transport", None)
    if transport is None or _LIMITS in transport.observers:
        return

    def observe(headers: Any) -> None:
        try:
            limiter.observe_headers(headers)
        except Exception:  # a strange header must never fail the request
            log.debug("ignoring unreadable rate-limit headers from %s", tr.name, exc_info=True)

    transport.observe_headers(_LIMITS, observe)
