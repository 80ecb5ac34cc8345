"""Runtime.build + router with the real SDK adapters against stub providers: cross-provider fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.errors import DeadlineExceeded, FailureKind, RouteFailed, UpstreamError
from modelroute.sidecar.routing import router
from modelroute.sidecar.routing.runtime import Runtime, RuntimeHolder

from .stub import Step, Stub


class Recorder:
    def __init__(self) -> None:
        self.attempts: list[tuple[str, str, dict[str, Any] | None]] = []
        self.requests: list[tuple[str | None, str]] = []

    def on_attempt(self, route: str, target: str, outcome: str, status: int | None, latency_s: float,
                   usage: dict[str, Any] | None) -> None:
        self.attempts.append((target, outcome, usage))

    def on_request(self, route: str, target: str | None, outcome: str, latency_s: float, streamed: bool) -> None:
        self.requests.append((target, outcome))


@pytest.fixture
async def stubs() -> AsyncIterator[dict[str, Stub]]:
    out = {p: await Stub(p).start() for p in ("anthropic", "openai", "gemini")}
    try:
        yield out
    finally:
        for s in out.values():
            await s.stop()


def cfg(stubs: dict[str, Stub]) -> SidecarConfig:
    targets = [
        {"name": "haiku", "provider": "anthropic", "model": "claude-x", "baseUrl": stubs["anthropic"].url,
         "apiKey": {"env": "A"}},
        {"name": "flash", "provider": "gemini", "model": "gemini-x", "baseUrl": stubs["gemini"].url,
         "apiKey": {"env": "G"}},
        {"name": "mini", "provider": "openai", "model": "gpt-x", "baseUrl": stubs["openai"].url,
         "apiKey": {"env": "O"}},
    ]
    return SidecarConfig.model_validate({"routes": [{
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "tc"},
        "spec": {"route": "classify", "targets": targets, "params": {"temperature": 0.1, "maxTokens": 16},
                 "prompt": {"version": "v3", "system": "You label tickets."}, "timeoutSeconds": 10},
    }]})


def key_for(target: Target) -> Any:
    return lambda: f"key-{target.name}"


REQ: dict[str, Any] = {"model": "classify", "messages": [{"role": "user", "content": "printer on fire"}]}


async def test_fallback_across_providers(stubs: dict[str, Stub]) -> None:
    rec = Recorder()
    holder = RuntimeHolder(Runtime.build(cfg(stubs), key_for, rec))
    stubs["anthropic"].plan = [Step("status", 529)]
    stubs["gemini"].plan = [Step("status", 429, {"retry-after": "1"})]
    with holder.lease() as rt:
        c = await router.complete(rt.routes["classify"], REQ)
    assert c.target == "mini"
    assert [(a.target, a.outcome, a.status) for a in c.attempts] == [
        ("haiku", "overloaded", 529), ("flash", "rate_limited", 429), ("mini", "ok", 200)]
    assert c.response["choices"][0]["message"]["content"] == "hello"
    # the route's system prompt and params reached every provider in its own format
    _, anthropic_body = stubs["anthropic"].seen[0]
    assert anthropic_body["system"].startswith("You label tickets.") and anthropic_body["max_tokens"] == 16
    _, openai_body = stubs["openai"].seen[0]
    assert openai_body["messages"][0] == {"role": "system", "content": "You label tickets."}
    assert openai_body["model"] == "gpt-x" and openai_body["temperature"] == 0.1
    assert rec.requests == [("mini", "ok")]
    await holder.aclose()


async def test_client_error_from_anthropic_is_returned_as_is(stubs: dict[str, Stub]) -> None:
    holder = RuntimeHolder(Runtime.build(cfg(stubs), key_for, Recorder()))
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "tools.0: bad schema"}}
    stubs["anthropic"].plan = [Step("status", 400, body=body)]
    with holder.lease() as rt, pytest.raises(RouteFailed) as info:
        await router.complete(rt.routes["classify"], REQ)
    assert info.value.client_error is not None and info.value.client_error.body == body
    assert stubs["openai"].seen == []
    await holder.aclose()


async def test_stream_falls_back_before_first_chunk_and_translates(stubs: dict[str, Stub]) -> None:
    rec = Recorder()
    holder = RuntimeHolder(Runtime.build(cfg(stubs), key_for, rec))
    stubs["anthropic"].plan = [Step("reset")]
    with holder.lease() as rt:
        sc = await router.open_stream(rt.routes["classify"], {**REQ, "stream": True})
        chunks = [c async for c in sc]
    assert sc.target == "flash"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "hello!"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c or c["usage"] is None for c in chunks)  # not asked for
    assert rec.attempts[-1][2] is not None and rec.attempts[-1][2]["total_tokens"] == 5  # but recorded
    assert [a.outcome for a in sc.attempts] == ["connection_error", "ok"]
    await holder.aclose()


async def test_stream_overloaded_right_after_message_start_still_falls_back(stubs: dict[str, Stub]) -> None:
    holder = RuntimeHolder(Runtime.build(cfg(stubs), key_for, Recorder()))
    stubs["anthropic"].plan = [Step("error_event", after=1)]  # message_start, then overloaded_error
    with holder.lease() as rt:
        sc = await router.open_stream(rt.routes["classify"], {**REQ, "stream": True})
        chunks = [c async for c in sc]
    assert sc.target == "flash"
    assert [a.outcome for a in sc.attempts] == ["overloaded", "ok"]
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    await holder.aclose()


async def test_stream_error_after_first_chunk_surfaces(stubs: dict[str, Stub]) -> None:
    holder = RuntimeHolder(Runtime.build(cfg(stubs), key_for, Recorder()))
    stubs["anthropic"].plan = [Step("error_event", after=4)]  # text already streamed
    seen: list[dict[str, Any]] = []

    async def drain(sc: router.StreamingCompletion) -> None:
        async for c in sc:
            seen.append(c)

    with holder.lease() as rt:
        sc = await router.open_stream(rt.routes["classify"], {**REQ, "stream": True})
        assert sc.target == "haiku"
        with pytest.raises(UpstreamError) as info:
            await drain(sc)
    assert info.value.kind is FailureKind.OVERLOADED
    assert seen[0]["choices"][0]["delta"].get("role") == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in seen) == "hello"
    assert stubs["gemini"].seen == [] and stubs["openai"].seen == []
    await holder.aclose()


def _timed(stubs: dict[str, Stub], route_timeout: float, target_timeout: float | None) -> SidecarConfig:
    base = cfg(stubs).routes[0].model_dump(mode="json", by_alias=True, exclude_none=True)
    for t in base["spec"]["targets"]:
        if target_timeout is not None:
            t["timeoutSeconds"] = target_timeout
    base["spec"]["timeoutSeconds"] = route_timeout
    return SidecarConfig.model_validate({"routes": [base]})


async def test_a_hung_target_times_out_and_falls_back_without_a_timer_of_the_loop(stubs: dict[str, Stub]) -> None:
    """The adapters bound their own exchange (``bounds_timeout``): the attempt loop adds no timer,
    and a hung target is still a TIMEOUT after the target's timeout, reported as the loop did."""
    runtime = Runtime.build(_timed(stubs, 10, 0.3), key_for, Recorder())
    stubs["anthropic"].plan = [Step("hang")]
    try:
        route = runtime.routes["classify"]
        assert all(getattr(step, "self_bounded", False) for _, step in route.chain.hops)  # type: ignore[attr-defined]
        c = await router.complete(route, REQ)
    finally:
        await runtime.aclose()
    assert c.target == "flash"
    first = c.attempts[0]
    assert (first.target, first.outcome, first.reason) == ("haiku", "timeout", "no answer within 0.3s")
    assert 250 <= first.duration_ms < 2000


async def test_a_hung_target_at_the_route_deadline_is_a_deadline(stubs: dict[str, Stub]) -> None:
    runtime = Runtime.build(_timed(stubs, 0.4, None), key_for, Recorder())
    stubs["anthropic"].plan = [Step("hang")]
    try:
        with pytest.raises(DeadlineExceeded) as e:
            await router.complete(runtime.routes["classify"], REQ)
    finally:
        await runtime.aclose()
    assert [(a.target, a.outcome) for a in e.value.attempts] == [("haiku", "timeout")]
    assert e.value.attempts[0].duration_ms < 2000
