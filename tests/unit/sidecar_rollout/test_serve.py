"""Serving a route with a canary over real HTTP: variant choice, headers, mirror copies, evidence in /stats."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from modelroute.api.stats import SidecarStats
from modelroute.api.v1alpha1.strategy import variant_for
from modelroute.operator.rollout.counters import evidence_from_stats
from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.testing.scrape import sample

from .conftest import FakeAdapters, Running, config

Start = Callable[..., Awaitable[Running]]


async def mirrors_done(sc: Running) -> None:
    """Every mirror copy answered and compared with stable's answer."""
    await asyncio.wait_for(sc.state.mirrors.drained(), 10)


async def test_no_canary_serves_as_before_and_counts_no_evidence(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(with_canary=False))
    status, headers, body = await sc.chat()
    assert status == 200 and json.loads(body)["model"] == "gpt-4o-mini"
    rt = sc.state.current()
    assert rt is not None
    assert headers["x-modelroute-variant"] == "stable" and headers["x-modelroute-revision"] == rt.routes["classify"].revision
    stats = await sc.stats()
    assert stats["rollouts"] == {} and stats["mirror"]["sent"] == 0
    assert "new" not in adapters
    assert "modelroute_rollout_" not in await sc.metrics()


async def test_weight_100_answers_with_the_canary(start: Start, adapters: FakeAdapters) -> None:
    cfg = config(weight=100, run="rev.0")
    sc = await start(cfg)
    status, headers, body = await sc.chat()
    assert status == 200 and json.loads(body)["model"] == "gpt-4.1-mini"
    assert headers["x-modelroute-variant"] == "canary" and headers["x-modelroute-revision"] == cfg.canaries[0].revision
    assert headers["x-modelroute-target"] == "new"
    stats = await sc.stats()
    assert stats["routes"]["classify"]["requests"] == 1            # a live canary answer is an inbound request
    stable, canary = evidence_from_stats({"pod": SidecarStats.model_validate(stats)}, "classify", "rev.0")
    assert (stable.requests, canary.requests, canary.outputs_valid, canary.prompt_tokens) == (0, 1, 1, 10)
    assert canary.priced == 1 and canary.cost_usd > 0                 # gpt-4.1-mini has a list price


async def test_sticky_key_gets_one_revision_on_every_sidecar(start: Start, adapters: FakeAdapters) -> None:
    cfg = config(weight=50, sticky="x-user-id")
    a, b = await start(cfg), await start(cfg)
    revision = cfg.canaries[0].revision
    seen: dict[str, set[str]] = {}
    for i in range(30):
        key = f"user-{i}"
        for sc in (a, b, a, b):
            status, headers, _ = await sc.chat(headers={"X-User-Id": key})
            assert status == 200
            seen.setdefault(key, set()).add(headers["x-modelroute-variant"])
    assert all(len(v) == 1 for v in seen.values())
    assert {k: v.pop() for k, v in seen.items()} == {k: variant_for(k, revision, 50) for k in seen}
    assert 5 < sum(variant_for(k, revision, 50) == "canary" for k in seen) < 25


async def test_mirror_adds_no_latency_and_is_compared(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(mirror=100, run="rev.0"))
    adapters["old"].text = "Billing"
    adapters["new"].text = "billing."       # the same label, spelled differently: agrees
    adapters["new"].gate = gate = asyncio.Event()   # the canary answers only when the test says so
    adapters["new"].delay = 1.0
    for _ in range(5):
        # Never waits for the canary: it has not answered when stable's answer is back.
        status, headers, _ = await asyncio.wait_for(sc.chat(), 10)
        assert status == 200 and headers["x-modelroute-variant"] == "stable"
    assert sc.state.mirrors.inflight == 5
    gate.set()
    await mirrors_done(sc)
    assert sc.state.mirrors.inflight == 0
    stats = await sc.stats()
    mirror = stats["rollouts"]["classify"]["variants"]["mirror"]
    assert mirror["requests"] == 5 and mirror["agreement"] == {"compared": 5, "agreed": 5, "taskCompared": 0, "taskAgreed": 0}
    assert mirror["latency"]["sum"] >= 5.0
    assert stats["routes"]["classify"]["requests"] == 5               # copies are not inbound requests
    _, canary = evidence_from_stats({"p": SidecarStats.model_validate(stats)}, "classify", "rev.0")
    assert canary.requests == 5 and canary.compared == 5


async def test_mirror_disagreement_is_counted(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(mirror=100))
    adapters["old"].text = '{"label": "billing"}'
    adapters["new"].text = '{"label": "refund"}'
    for _ in range(3):
        await sc.chat()
    await mirrors_done(sc)
    assert sc.state.mirrors.inflight == 0
    mirror = (await sc.stats())["rollouts"]["classify"]["variants"]["mirror"]
    assert mirror["agreement"] == {"compared": 3, "agreed": 0, "taskCompared": 0, "taskAgreed": 0}


async def test_mirror_drops_when_the_pool_is_full(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(mirror=100), mirror_limit=2)
    adapters["new"].gate = asyncio.Event()   # never set: no copy answers
    results = await asyncio.wait_for(asyncio.gather(*(sc.chat() for _ in range(10))), 10)
    assert all(r[0] == 200 for r in results)
    stats = await sc.stats()
    assert stats["mirror"]["dropped"] == 8 and stats["mirror"]["sent"] == 2
    assert stats["rollouts"]["classify"]["variants"]["mirror"]["dropped"] == 8
    assert sample(await sc.metrics(), "modelroute_mirror_dropped_total") == 8
    assert sc.state.mirrors.inflight == 2 and len(adapters["new"].calls) == 2   # shutdown cancels them


async def test_streaming_request_is_mirrored_as_non_streaming(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(mirror=100))
    adapters["old"].text = adapters["new"].text = "billing"
    status, _, body = await sc.chat(stream=True)
    assert status == 200 and body.rstrip().endswith(b"data: [DONE]")
    await mirrors_done(sc)
    assert sc.state.mirrors.inflight == 0
    assert "stream" not in adapters["new"].calls[0] and "stream_options" not in adapters["new"].calls[0]
    variants = (await sc.stats())["rollouts"]["classify"]["variants"]
    assert variants["stable"]["requests"] == 1 and variants["stable"]["outputs"] == {"checked": 1, "valid": 1}
    assert variants["stable"]["tokens"] == {"prompt": 10, "completion": 2}   # usage counted though the app did not ask
    assert variants["mirror"]["agreement"] == {"compared": 1, "agreed": 1, "taskCompared": 0, "taskAgreed": 0}


async def test_canary_errors_are_counted_by_class(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(weight=100))
    adapters["new"].error = UpstreamError(FailureKind.SERVER, "down", 503)
    for stream in (False, True):
        status, headers, _ = await sc.chat(stream=stream)
        assert status == 503 and headers["x-modelroute-variant"] == "canary"
    canary = (await sc.stats())["rollouts"]["classify"]["variants"]["canary"]
    assert canary["requests"] == 2 and canary["errors"] == {"server_error": 2} and canary["outputs"]["checked"] == 0


async def test_json_requests_count_unparseable_answers_as_invalid(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(weight=100))
    adapters["new"].text = "Sure! The label is billing."
    await sc.chat(response_format={"type": "json_object"})
    adapters["new"].text = '{"label": "billing"}'
    await sc.chat(response_format={"type": "json_object"})
    canary = (await sc.stats())["rollouts"]["classify"]["variants"]["canary"]
    assert canary["outputs"] == {"checked": 2, "valid": 1}


async def test_push_with_a_new_run_resets_counters_and_a_weight_change_keeps_them(
        start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(weight=100, run="r.0"))
    await sc.chat()
    await sc.state.apply(config(weight=100, mirror=10, run="r.0"), source="push")
    await sc.chat()
    assert (await sc.stats())["rollouts"]["classify"]["variants"]["canary"]["requests"] == 2
    await sc.state.apply(config(weight=100, run="r.1"), source="push")
    await sc.chat()
    doc = (await sc.stats())["rollouts"]["classify"]
    assert doc["run"] == "r.1" and doc["variants"]["canary"]["requests"] == 1


async def test_shutdown_cancels_mirror_copies(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(mirror=100))
    adapters["new"].delay = 30.0
    await sc.chat()
    assert sc.state.mirrors.inflight == 1
    t0 = time.perf_counter()
    await sc.sidecar.stop()
    # About time itself: shutdown cancels copies instead of spending its 2 s drain grace on them.
    assert time.perf_counter() - t0 < 2.0 and sc.state.mirrors.inflight == 0
