"""Canary serving end to end: real SDK app -> sidecar (signed pushes) -> provider emulators.

Weights split live traffic, a sticky header pins callers across pods, mirror copies never
slow the app and are dropped under load, and the per-run evidence in ``/stats`` is what
the operator's ``evidence_from_stats`` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable

import openai

from modelroute.api.stats import SidecarStats
from modelroute.api.v1alpha1.strategy import Analysis, Verdict, variant_for
from modelroute.operator.rollout.analysis import evaluate
from modelroute.operator.rollout.counters import evidence_from_stats
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.scrape import sample

from .conftest import CANARY_MODEL, STABLE_MODEL, Pod, rollout_config

Pods = Callable[..., Awaitable[Pod]]


async def _mirrors_done(*pods: Pod, within: float = 10.0) -> None:
    """Every mirror copy answered and compared with stable's answer."""
    await asyncio.wait_for(asyncio.gather(*(p.state.mirrors.drained() for p in pods)), within)


async def test_weights_split_live_traffic(pods: Pods, emu: EmulatorServer) -> None:
    pod = await pods(rollout_config(emu, weight=30))
    variants = []
    for i in range(300):
        _, headers = await pod.ask(f"ticket {i}")
        variants.append(headers["x-modelroute-variant"])
    share = variants.count("canary") / len(variants)
    assert 0.2 < share < 0.4
    assert emu.count("anthropic", CANARY_MODEL) == variants.count("canary")
    assert emu.count("openai", STABLE_MODEL) == variants.count("stable")
    config = pod.state.current()
    assert config is not None
    canary = config.routes["classify"].canary
    assert canary is not None
    _, headers = await pod.ask("ticket", headers={"x-user-id": "u1"})   # no sticky header configured: still random
    assert headers["x-modelroute-revision"] in {canary.revision, config.routes["classify"].revision}


async def test_sticky_header_pins_a_key_across_requests_and_pods(pods: Pods, emu: EmulatorServer) -> None:
    cfg = rollout_config(emu, weight=40, sticky="x-user-id")
    a, b = await pods(cfg), await pods(cfg)
    revision = cfg.canaries[0].revision
    stable_revision = a.state.current().routes["classify"].revision  # type: ignore[union-attr]
    for i in range(25):
        key = f"customer-{i}"
        expected = variant_for(key, revision, 40)
        for pod in (a, b, a, b):
            _, headers = await pod.ask(headers={"X-User-Id": key})
            assert headers["x-modelroute-variant"] == expected
            assert headers["x-modelroute-revision"] == (revision if expected == "canary" else stable_revision)
    # Raising the weight moves keys only from stable to canary, on every pod at once.
    cfg60 = rollout_config(emu, weight=60, sticky="x-user-id", run=cfg.canaries[0].run_id)
    await a.push(cfg60)
    await b.push(cfg60)
    for i in range(25):
        key = f"customer-{i}"
        _, ha = await a.ask(headers={"X-User-Id": key})
        _, hb = await b.ask(headers={"X-User-Id": key})
        assert ha["x-modelroute-variant"] == hb["x-modelroute-variant"] == variant_for(key, revision, 60)
        if variant_for(key, revision, 40) == "canary":
            assert ha["x-modelroute-variant"] == "canary"


async def test_mirror_never_slows_stable_answers(pods: Pods, emu: EmulatorServer) -> None:
    pod = await pods(rollout_config(emu, mirror=100))
    emu.fault(kind="latency", latency_ms=1500, provider="anthropic")  # the canary takes 1.5 s
    emu.reply("billing", contains="invoice")                          # both revisions give the same label
    # Baseline without mirroring, then with: stable latency must not move.
    timings = []
    for _ in range(10):
        t0 = time.perf_counter()
        text, headers = await pod.ask()
        timings.append(time.perf_counter() - t0)
        assert text == "billing" and headers["x-modelroute-variant"] == "stable"
    assert max(timings) < 1.0, timings                  # less than the canary's latency: nobody waited for it
    assert statistics.median(timings) < 0.3
    await _mirrors_done(pod)
    stats = await pod.stats()
    mirror = stats["rollouts"]["classify"]["variants"]["mirror"]
    assert mirror["requests"] == 10 and mirror["agreement"] == {"compared": 10, "agreed": 10, "taskCompared": 0, "taskAgreed": 0}
    assert mirror["latency"]["sum"] >= 15.0                            # the canary's own 1.5 s each
    assert stats["rollouts"]["classify"]["variants"]["stable"]["latency"]["sum"] < 10.0
    streamed = [r for r in emu.requests("anthropic", CANARY_MODEL)]
    assert len(streamed) == 10 and not any(r.stream for r in streamed)


async def test_streaming_requests_are_mirrored_as_non_streaming(pods: Pods, emu: EmulatorServer) -> None:
    pod = await pods(rollout_config(emu, mirror=100))
    emu.reply("refund", contains="money")
    stream = await pod.client.chat.completions.create(
        model="classify", messages=[{"role": "user", "content": "money back please"}], stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "refund"
    await _mirrors_done(pod)
    (copy,) = emu.requests("anthropic", CANARY_MODEL)
    assert copy.stream is False
    variants = (await pod.stats())["rollouts"]["classify"]["variants"]
    assert variants["mirror"]["agreement"] == {"compared": 1, "agreed": 1, "taskCompared": 0, "taskAgreed": 0}
    assert variants["stable"]["outputs"] == {"checked": 1, "valid": 1}
    assert variants["stable"]["tokens"]["completion"] > 0


async def test_mirror_is_dropped_under_load(pods: Pods, emu: EmulatorServer) -> None:
    pod = await pods(rollout_config(emu, mirror=100), mirror_limit=4)
    emu.fault(kind="latency", latency_ms=5000, provider="anthropic")   # no copy finishes during the burst
    t0 = time.perf_counter()
    results = await asyncio.gather(*(pod.ask(f"ticket {i}") for i in range(40)))
    elapsed = time.perf_counter() - t0
    assert all(h["x-modelroute-variant"] == "stable" for _, h in results)
    assert elapsed < 4.0, elapsed                       # nobody waited for a 5 s copy (generous: a loaded CI box)
    stats = await pod.stats()
    assert stats["mirror"]["sent"] == 4 and stats["mirror"]["dropped"] == 36
    assert stats["rollouts"]["classify"]["variants"]["mirror"]["dropped"] == 36
    metrics = await pod.metrics()
    assert sample(metrics, "modelroute_mirror_dropped_total") == 36
    assert 'modelroute_rollout_mirror_dropped_total{route="classify"' in metrics
    assert pod.state.mirrors.inflight == 4
    assert emu.count("anthropic", CANARY_MODEL) == 4    # the 4 copies in flight; shutdown cancels them


async def test_per_run_counters_feed_the_operator_analysis(pods: Pods, emu: EmulatorServer) -> None:
    cfg = rollout_config(emu, weight=50, mirror=100)
    run = cfg.canaries[0].run_id
    a, b = await pods(cfg), await pods(cfg)
    emu.fault(kind="status", status=503, provider="anthropic", times=3)
    for i in range(40):
        for pod in (a, b):
            with contextlib.suppress(openai.InternalServerError):  # the canary's 503s reach the app (no fallback)
                await pod.ask(f"ticket {i}")
    await _mirrors_done(a, b)
    docs = {p.name: SidecarStats.model_validate(await p.stats()) for p in (a, b)}
    stable, canary = evidence_from_stats(docs, "classify", run)
    served_stable = emu.count("openai", STABLE_MODEL)
    assert stable.requests == served_stable and stable.failed == 0
    assert canary.requests == emu.count("anthropic", CANARY_MODEL)   # live canary + mirror copies
    assert canary.failed == 3 and dict(canary.errors) == {"server_error": 3}
    assert canary.compared > 0 and canary.prompt_tokens > 0 and canary.priced == canary.requests - 3
    assert stable.latency.count == served_stable
    judgement = evaluate(Analysis(min_samples=10, max_error_rate=0.5, max_latency_p95_ratio=100.0,
                                  min_valid_output_rate=0.5), stable, canary)
    assert judgement.verdict is Verdict.PASS, judgement.summary()
    for doc in docs.values():
        assert doc.rollouts["classify"].run == run and doc.rollouts["classify"].active is True


async def test_promotion_push_ends_the_canary_and_serving_is_as_before(pods: Pods, emu: EmulatorServer) -> None:
    pod = await pods(rollout_config(emu, weight=100))
    _, headers = await pod.ask()
    assert headers["x-modelroute-variant"] == "canary"
    await pod.push(rollout_config(emu, canary=False))          # abort: one push back to 100% stable
    for _ in range(5):
        _, headers = await pod.ask()
        assert headers["x-modelroute-variant"] == "stable" and headers["x-modelroute-target"] == "mini"
    doc = (await pod.stats())["rollouts"]["classify"]
    assert doc["active"] is False and doc["variants"]["canary"]["requests"] == 1
    assert doc["variants"]["stable"]["requests"] == 0          # no rollout, no evidence work
