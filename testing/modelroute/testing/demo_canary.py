"""The live-canary part of `modelroute demo`: the operator's pure rollout engine driving a standalone sidecar.

No Kubernetes: this module plays the operator's reconcile loop by hand. Every tick it reads
the sidecar's ``/stats`` (per-run stable/canary/mirror evidence), calls the same pure
``step`` the operator calls, prints what changed (one line per event), and pushes the
decision's serving as a signed ``PUT /config`` with the canary (the operator's push format;
bearer-token pushes carry ModelRoute documents only, no canaries). Meanwhile background
traffic from the real openai SDK flows through the sidecar.

Two rollouts on the ``triage`` route: a healthy model swap is mirrored, weighted and
promoted; then a model whose emulator answers 503 on a third of requests is aborted by the
analysis while mirrored, before any user sees it.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelroute.api.config import CanaryServing, SidecarConfig
from modelroute.api.stats import SidecarStats
from modelroute.api.v1alpha1 import ModelRoute, ModelRouteSpec
from modelroute.api.v1alpha1.strategy import (
    RolloutPhase,
    RolloutStatus,
    Strategy,
    Verdict,
    Weights,
    revision_of,
)
from modelroute.operator.push.plan import signed_body
from modelroute.operator.rollout.analysis import describe
from modelroute.operator.rollout.counters import evidence_from_stats
from modelroute.operator.rollout.machine import Decision, Desired, Observations, Serving, serving_of, step
from modelroute.testing.emulators import EmulatorServer

ROUTE = "triage"
POD_NAMESPACE, POD_NAME = "demo", "demo-sidecar"
STABLE_MODEL, GOOD_MODEL, BAD_MODEL = "gpt-4o-mini", "gpt-4.1-mini", "gpt-4o"
TICK = 0.25          # seconds between reconcile passes
ROLLOUT_TIMEOUT = 25.0

HEALTHY = {"canary": {
    "steps": [{"mirror": 100}, {"pause": {"duration": "2s"}}, {"weight": 25}, {"pause": {"duration": "2s"}},
              {"weight": 50}, {"pause": {"duration": "2s"}}],
    "analysis": {"interval": "1s", "minSamples": 30, "maxErrorRate": 0.05, "maxLatencyP95Ratio": 5.0,
                 "maxCostRatio": 3.0, "failureLimit": 1},
    "progressDeadlineSeconds": 20}}
FAULTY = {"canary": {
    "steps": [{"mirror": 100}, {"pause": {"duration": "3s"}}, {"weight": 20}, {"pause": {"duration": "3s"}}],
    "analysis": {"interval": "1s", "minSamples": 30, "maxErrorRate": 0.05},
    "progressDeadlineSeconds": 20}}


def triage_spec(emulator_url: str, model: str) -> ModelRouteSpec:
    return ModelRouteSpec.model_validate({
        "route": ROUTE, "timeoutSeconds": 10,
        "targets": [{"name": "primary", "provider": "openai", "model": model, "baseUrl": emulator_url + "/v1",
                     "apiKey": {"env": "OPENAI_API_KEY"}}],
        "prompt": {"version": "v1", "system": "Label the ticket: billing, bug or other."},
    })


def route_of(spec: ModelRouteSpec) -> ModelRoute:
    return ModelRoute.model_validate({"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute",
                                      "metadata": {"name": ROUTE}, "spec": spec.wire()})


def config_for(base: Sequence[ModelRoute], specs: dict[str, ModelRouteSpec], serving: Serving) -> SidecarConfig:
    """What the sidecar must serve for ``serving``: the other routes, triage at stable, plus the canary."""
    canaries = []
    if serving.canary_revision is not None and serving.run_id is not None:
        w = serving.weights
        canaries.append(CanaryServing(route=ROUTE, revision=serving.canary_revision, run_id=serving.run_id,
                                      spec=specs[serving.canary_revision], weight=w.canary, mirror=w.mirror,
                                      sticky_header=serving.sticky_header))
    return SidecarConfig(routes=[*base, route_of(specs[serving.stable_revision])], canaries=canaries)


def weights_text(w: Weights) -> str:
    return f"stable {w.stable}% / canary {w.canary}% / mirror {w.mirror}%"


def analysis_text(status: RolloutStatus) -> str:
    """``analysis Pass: samples 52 >= 30 (52 samples); errorRate 0 <= 0.05 (52 samples)``."""
    a = status.analysis
    assert a is not None
    fails = f" (failures {a.failures})" if a.failures else ""
    return f"analysis {a.verdict.value}{fails}: " + "; ".join(describe(m) for m in a.metrics)


@dataclass
class Sidecar:
    """The demo sidecar's admin port, as the operator sees it: signed pushes in, ``/stats`` out."""

    admin: int
    key: Ed25519PrivateKey

    def push(self, config: SidecarConfig) -> str:
        body, headers = signed_body(self.key, POD_NAMESPACE, POD_NAME, config, datetime.now(UTC))
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin}/config", data=body, headers=headers, method="PUT")
        with urllib.request.urlopen(req, timeout=5) as r:
            return str(json.loads(r.read()).get("version", "?"))

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/stats", timeout=5) as r:
            return dict(json.loads(r.read()))


@dataclass
class Traffic:
    """Background chat requests on the triage route with the openai SDK; answers counted by model."""

    client: Any
    workers: int = 4
    answers: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    generation: int = 0  # bumped by reset(): a request started before it is not counted after it
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(i)) for i in range(self.workers)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def reset(self) -> None:
        self.answers, self.errors = {}, 0
        self.generation += 1

    def summary(self) -> str:
        by_model = ", ".join(f"{m} {n}" for m, n in sorted(self.answers.items()))
        return f"traffic: {sum(self.answers.values())} answers ({by_model or 'none yet'}), {self.errors} errors"

    async def _run(self, i: int) -> None:
        from openai import OpenAIError

        n = 0
        while True:
            n += 1
            started = self.generation
            try:
                reply = await self.client.chat.completions.create(
                    model=ROUTE, messages=[{"role": "user", "content": f"ticket {i}-{n}: my card was charged twice"}])
                model = next((m for m in (GOOD_MODEL, BAD_MODEL, STABLE_MODEL) if str(reply.model).startswith(m)), reply.model)
                if started == self.generation:
                    self.answers[model] = self.answers.get(model, 0) + 1
            except OpenAIError:
                if started == self.generation:
                    self.errors += 1
            await asyncio.sleep(0.01)


@dataclass
class Rollout:
    """One rollout driven to its end: the operator's loop with the pure state machine."""

    sidecar: Sidecar
    base: list[ModelRoute]
    specs: dict[str, ModelRouteSpec]
    traffic: Traffic
    state: RolloutStatus
    pushed: Serving
    t0: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        print(f"   [{time.monotonic() - self.t0:5.1f}s] {text}", flush=True)

    async def run(self, revision: str, strategy: Strategy) -> Decision:
        """Walk ``revision`` through ``strategy`` until promoted or aborted (or the timeout)."""
        desired = Desired(revision, strategy)
        deadline = time.monotonic() + ROLLOUT_TIMEOUT
        while True:
            serving_in = serving_of(self.state, strategy)
            obs = Observations(all_acked=self.pushed == serving_in)
            if serving_in.run_id is not None:
                stats = await asyncio.to_thread(self.sidecar.stats)
                stable, canary = evidence_from_stats({POD_NAME: SidecarStats.model_validate(stats)}, ROUTE, serving_in.run_id)
                obs = Observations(all_acked=obs.all_acked, stable=stable, canary=canary)
            decision = step(self.state, desired, obs, datetime.now(UTC))
            await self._report(decision)
            self.state = decision.status
            if decision.promoted is not None or self.state.phase is RolloutPhase.DEGRADED or time.monotonic() > deadline:
                return decision
            await asyncio.sleep(TICK)

    async def _report(self, d: Decision) -> None:
        before, after = self.state, d.status
        if after.analysis is not None and (before.analysis is None or after.analysis.time != before.analysis.time):
            mark = {Verdict.PASS: "ok", Verdict.FAIL: "FAIL", Verdict.INCONCLUSIVE: "wait"}[after.analysis.verdict]
            self.say(f"{mark:4} {analysis_text(after)} | {self.traffic.summary()}")
        for e in d.events:
            self.say(f"{'WARNING ' if e.type == 'Warning' else ''}{e.reason}: {e.message}")
        if d.serving != self.pushed:
            config = config_for(self.base, self.specs, d.serving)
            version = await asyncio.to_thread(self.sidecar.push, config)
            w = d.serving.weights
            what = "stable 100% (canary dropped)" if d.serving.canary_revision is None else weights_text(w) + (
                "" if w.touches_canary else " (canary loaded, no traffic yet: make before break)")
            self.say(f"push  {what} -> sidecar serves {version}")
            self.pushed = d.serving
        if after.phase is not before.phase:
            self.say(f"phase {after.phase.value}" + (f": {after.message}" if after.message else ""))


async def run_canary(client: Any, emu: EmulatorServer, admin: int, key: Ed25519PrivateKey, base: list[ModelRoute]) -> int:
    """Both rollouts against the running sidecar; 0 when the first promoted and the second aborted."""
    sidecar = Sidecar(admin, key)
    stable_spec, good_spec, bad_spec = (triage_spec(emu.url, m) for m in (STABLE_MODEL, GOOD_MODEL, BAD_MODEL))
    specs = {revision_of(s): s for s in (stable_spec, good_spec, bad_spec)}
    healthy, faulty = Strategy.model_validate(HEALTHY), Strategy.model_validate(FAULTY)

    # The first revision becomes stable at once (nothing to compare with).
    first = step(None, Desired(revision_of(stable_spec), healthy), Observations(all_acked=True), datetime.now(UTC))
    version = await asyncio.to_thread(sidecar.push, config_for(base, specs, first.serving))
    traffic = Traffic(client)
    traffic.start()
    try:
        ro = Rollout(sidecar, base, specs, traffic, first.status, first.serving)
        _title("live canary 1: triage route gpt-4o-mini -> gpt-4.1-mini (mirror 100, weight 25, weight 50, promote)",
               f"signed push of stable revision {revision_of(stable_spec)} -> sidecar serves {version}; "
               "the operator's pure rollout engine (step) decides every 0.25 s from /stats")
        d1 = await ro.run(revision_of(good_spec), healthy)
        promoted = d1.promoted == revision_of(good_spec)
        ro.say(f"{traffic.summary()}")
        print(f"   result: {'promoted' if promoted else 'NOT promoted'}: revision {revision_of(good_spec)} ({GOOD_MODEL}) "
              f"{'now serves all traffic' if promoted else 'phase ' + d1.status.phase.value}", flush=True)

        emu.fault(kind="status", status=503, model=BAD_MODEL, probability=0.35)
        traffic.reset()
        ro.t0 = time.monotonic()
        _title(f"live canary 2: triage route {GOOD_MODEL} -> {BAD_MODEL}, whose emulator answers 503 on 35% of requests",
               "the analysis judges the mirrored copies; users keep getting stable answers")
        d2 = await ro.run(revision_of(bad_spec), faulty)
        aborted = d2.status.phase is RolloutPhase.DEGRADED
        ro.say(f"{traffic.summary()}")
        print(f"   result: {'aborted' if aborted else 'NOT aborted'}: revision {revision_of(bad_spec)} ({BAD_MODEL}); "
              f"all traffic is on stable {d2.status.stable_revision} ({GOOD_MODEL})", flush=True)
    finally:
        await traffic.stop()
        emu.faults.clear()
    return 0 if promoted and aborted else 1


def _title(title: str, detail: str) -> None:
    print(f"\n\033[1m== {title}\033[0m\n   {detail}", flush=True)
