"""Local limits under concurrency, the 80% quota gauge, the response cache and cost, through a real sidecar."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import openai
import pytest

from modelroute.api.stats import SidecarStats
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.scrape import sample
from modelroute.testing.sidecars import route, target
from modelroute.testing.webapps import serving

from .conftest import Running, Start

MSG = [{"role": "user", "content": "hello there"}]


async def chat(sc: Running, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    return await sc.post("/v1/chat/completions", body)


async def test_200_concurrent_never_exceed_50_rpm_upstream_and_the_rest_falls_back(
        emu: EmulatorServer, start: Start, caplog: pytest.LogCaptureFixture) -> None:
    limited = target(emu, "openai", "primary", limits={"requestsPerMinute": 50, "maxWaitMs": 200})
    sc = await start([route("busy", [limited, target(emu, "gemini", "backup")])])
    caplog.set_level(logging.WARNING, logger="modelroute.sidecar.pipeline.counters")
    results = await asyncio.gather(*(chat(sc, {"model": "busy", "messages": MSG}) for _ in range(200)))
    assert [s for s, _, _ in results].count(200) == 200
    assert emu.count("openai") == 50                     # never more than the limit upstream
    assert emu.count("gemini") == 150                    # the excess went to the fallback target
    served = [h["x-modelroute-target"] for _, h, _ in results]
    assert served.count("primary") == 50 and served.count("backup") == 150
    stats = (await sc.stats())["routes"]["busy"]
    primary = stats["targets"]["primary"]
    assert primary["limits"]["admitted"] == 50 and primary["limits"]["refused"] == 150
    assert primary["limits"]["utilisation"]["requests"] == 1.0 and primary["limits"]["pressure"] is True
    assert primary["limitRefusals"] == 150 and primary["outcomes"] == {"ok": 50, "local_limit": 150}
    metrics = await sc.metrics()
    assert sample(metrics, "modelroute_quota_pressure", route="busy", target="primary") == 1
    assert sample(metrics, "modelroute_quota_utilisation", route="busy", target="primary", dimension="requests") == 1.0
    warnings = [r.getMessage() for r in caplog.records if "quota pressure" in r.getMessage()]
    assert len(warnings) == 1 and "busy/primary" in warnings[0] and "requests" in warnings[0]


async def test_streams_are_limited_too_and_every_target_limited_is_429(emu: EmulatorServer, start: Start) -> None:
    only = target(emu, "anthropic", "only", limits={"requestsPerMinute": 2, "maxWaitMs": 0})
    sc = await start([route("tiny", [only])])
    for _ in range(2):
        status, _, body = await chat(sc, {"model": "tiny", "messages": MSG, "stream": True})
        assert status == 200 and "[DONE]" in body
    status, _, body = await chat(sc, {"model": "tiny", "messages": MSG, "stream": True})
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert emu.count("anthropic") == 2


async def test_provider_headers_teach_the_limiter(emu: EmulatorServer, start: Start) -> None:
    limited = target(emu, "openai", "primary", limits={"tokensPerMinute": 1_000_000, "maxWaitMs": 0})
    sc = await start([route("learn", [limited, target(emu, "gemini", "backup")])])
    emu.fault(kind="status", status=429, retry_after=30, provider="openai", times=1)
    assert (await chat(sc, {"model": "learn", "messages": MSG}))[1]["x-modelroute-target"] == "backup"
    # The provider said "not for 30 s": the next request skips it without calling it.
    assert (await chat(sc, {"model": "learn", "messages": MSG}))[1]["x-modelroute-target"] == "backup"
    assert emu.count("openai") == 1
    limits = (await sc.stats())["routes"]["learn"]["targets"]["primary"]["limits"]
    assert limits["blockedForSeconds"] > 25
    # The operator's typed view of the same document (modelroute.api.stats) reads it too.
    view = SidecarStats.model_validate(await sc.stats()).routes["learn"].targets["primary"].limits
    assert view is not None and view.blocked_for_seconds > 25 and view.tokens_per_minute == 1_000_000


async def test_second_identical_deterministic_request_makes_no_upstream_call(emu: EmulatorServer, start: Start) -> None:
    # temperature needs anthropic-version 2023-06-01 (the SDK's 2026-10-21 refuses it).
    det = target(emu, "anthropic", apiVersion="2023-06-01")
    sc = await start([route("det", [det], params={"temperature": 0}, cache={"ttlSeconds": 60})])
    client = openai.AsyncOpenAI(base_url=sc.url + "/v1", api_key="x", max_retries=0)
    first = await client.chat.completions.create(model="det", messages=[{"role": "user", "content": "one two"}])
    second = await client.chat.completions.create(model="det", messages=[{"role": "user", "content": "one two"}])
    assert emu.count("anthropic") == 1 and emu.requests("anthropic")[0].body["temperature"] == 0
    assert second.choices[0].message.content == first.choices[0].message.content == "[anthropic:claude-haiku-4-5] one two"
    # A streaming request with the same content is replayed from the cache.
    text = ""
    async for chunk in await client.chat.completions.create(model="det", messages=[{"role": "user", "content": "one two"}],
                                                            stream=True, stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        elif chunk.usage is not None:
            assert chunk.usage.completion_tokens == first.usage.completion_tokens  # type: ignore[union-attr]
    assert text == first.choices[0].message.content and emu.count("anthropic") == 1
    # Another question is a miss; so is the same question on a sampling route (not cached).
    await client.chat.completions.create(model="det", messages=[{"role": "user", "content": "three"}])
    assert emu.count("anthropic") == 2
    cache = (await sc.stats())["routes"]["det"]["cache"]
    assert cache["hits"] == 2 and cache["misses"] == 2 and cache["hitRatio"] == 0.5 and cache["entries"] == 2
    assert sample(await sc.metrics(), "modelroute_cache_hit_ratio", route="det") == 0.5
    await client.close()


async def test_a_streamed_answer_is_cached_once_it_ended_cleanly(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("det", [target(emu, "gemini")], params={"temperature": 0}, cache={})])
    body = {"model": "det", "messages": MSG, "stream": True}
    status, _, raw = await chat(sc, body)
    assert status == 200 and "[DONE]" in raw and emu.count("gemini") == 1 and emu.requests("gemini")[0].stream
    status, headers, data = await chat(sc, {"model": "det", "messages": MSG})       # served from the stream's answer
    assert status == 200 and headers["x-modelroute-target"] == "gemini" and emu.count("gemini") == 1
    assert data["choices"][0]["message"]["content"] == "[gemini:gemini-2.5-flash] hello there"
    # A stream cut mid-way is not cached.
    emu.fault(kind="stream_cut", after_chunks=2, provider="gemini", times=1)
    cut = {"model": "det", "messages": [{"role": "user", "content": "a b c d e f"}], "stream": True}
    status, _, raw = await chat(sc, cut)
    assert status == 200 and "[DONE]" not in raw
    await chat(sc, cut)
    assert emu.count("gemini") == 3


async def test_sampling_requests_are_not_cached_unless_the_policy_says_so(emu: EmulatorServer, start: Start) -> None:
    sc = await start([
        route("hot", [target(emu, "openai")], params={"temperature": 0.7}, cache={}),
        route("hot-cached", [target(emu, "openai")], params={"temperature": 0.7}, cache={"includeSampled": True}),
    ])
    for name in ("hot", "hot", "hot-cached", "hot-cached"):
        assert (await chat(sc, {"model": name, "messages": MSG}))[0] == 200
    assert emu.count("openai") == 3


async def test_cost_per_route_and_target(emu: EmulatorServer, start: Start) -> None:
    priced = target(emu, "openai", "mini", pricing={"inputPerMillion": 10_000, "outputPerMillion": 5_000})
    sc = await start([route("paid", [priced]), route("listed", [target(emu, "gemini")])])
    _, _, a = await chat(sc, {"model": "paid", "messages": MSG})
    _, _, b = await chat(sc, {"model": "listed", "messages": MSG})
    stats = (await sc.stats())["routes"]
    usage = a["usage"]
    expected = (usage["prompt_tokens"] * 10_000 + usage["completion_tokens"] * 5_000) / 1e6
    assert stats["paid"]["cost"]["totalUsd"] == pytest.approx(expected)
    assert stats["paid"]["cost"]["perRequestUsd"] == pytest.approx(expected)
    assert stats["paid"]["targets"]["mini"]["costUsd"] == pytest.approx(expected)
    listed = (b["usage"]["prompt_tokens"] * 0.30 + b["usage"]["completion_tokens"] * 2.50) / 1e6  # built-in list price
    assert stats["listed"]["cost"]["totalUsd"] == pytest.approx(listed)
    metrics = await sc.metrics()
    assert sample(metrics, "modelroute_cost_usd_total", route="paid", target="mini") == pytest.approx(expected)
    assert json.dumps(stats).count("sk-openai-test") == 0
    runtime = sc.state.current()
    assert runtime is not None
    observer: Any = runtime.routes["paid"].observer                 # what traces read the cost of one attempt from
    assert observer.cost("mini", usage) == pytest.approx(expected)


async def test_prompt_version_in_headers_and_stats(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("p", [target(emu, "openai")], prompt={"version": "v9", "system": "Be brief."})])
    status, headers, _ = await chat(sc, {"model": "p", "messages": MSG})
    assert status == 200 and headers["x-modelroute-prompt-version"] == "v9"
    assert (await sc.stats())["routes"]["p"]["promptVersion"] == "v9"
    assert sample(await sc.metrics(), "modelroute_prompt_info", route="p", version="v9") == 1


async def test_openai_rate_limit_headers_lower_the_local_limit(start: Start, emu: EmulatorServer) -> None:
    """A provider that says "3 requests per minute, 1 left" is believed: the next request goes elsewhere."""
    from aiohttp import web

    async def completions(request: web.Request) -> web.Response:
        body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
        return web.json_response(body, headers={"x-ratelimit-limit-requests": "3", "x-ratelimit-remaining-requests": "0",
                                                "x-ratelimit-reset-requests": "20s"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    async with serving(app) as port:
        provider = {"name": "primary", "provider": "openai", "model": "gpt-4o-mini", "baseUrl": f"http://127.0.0.1:{port}/v1",
                    "apiKey": {"env": "KEY_OPENAI"}, "limits": {"requestsPerMinute": 1000, "maxWaitMs": 0}}
        sc = await start([route("hdr", [provider, target(emu, "gemini", "backup")])])
        assert (await chat(sc, {"model": "hdr", "messages": MSG}))[1]["x-modelroute-target"] == "primary"
        assert (await chat(sc, {"model": "hdr", "messages": MSG}))[1]["x-modelroute-target"] == "backup"
        limits = (await sc.stats())["routes"]["hdr"]["targets"]["primary"]["limits"]
        assert limits["requestsPerMinute"] == 3.0 and limits["refused"] == 1
