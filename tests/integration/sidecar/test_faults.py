"""Provider faults through the real sidecar: retry, fallback, or the right error for the app."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import MODELS, route, target

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
PAIRS = [("openai", "anthropic"), ("anthropic", "gemini"), ("gemini", "openai")]
MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "ping"}]


def fallback_route(emu: EmulatorServer, primary: str, backup: str, *, primary_extra: dict[str, Any] | None = None,
                   **spec: Any) -> dict[str, Any]:
    return route("r", [target(emu, primary, "primary", **(primary_extra or {})), target(emu, backup, "backup")], **spec)


async def attempts(sc: Running) -> dict[str, dict[str, int]]:
    stats = await sc.stats()
    return {t: v["outcomes"] for t, v in stats["routes"]["r"]["targets"].items()}


@pytest.mark.parametrize(("primary", "backup"), PAIRS)
async def test_429_retry_after_is_honoured_on_the_same_target(emu: EmulatorServer, start: Start, primary: str,
                                                              backup: str) -> None:
    sc = await start([fallback_route(emu, primary, backup, retry={"attempts": 2, "backoff": {"initialMs": 1, "maxMs": 2000}})])
    emu.fault(kind="status", status=429, retry_after=0.4, provider=primary, times=1)
    t0 = time.monotonic()
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG)
    assert time.monotonic() - t0 >= 0.35  # waited for retry-after instead of hammering
    assert raw.headers["x-modelroute-target"] == "primary"
    assert emu.count(primary) == 2 and emu.count(backup) == 0
    assert await attempts(sc) == {"primary": {"rate_limited": 1, "ok": 1}}


@pytest.mark.parametrize(("primary", "backup"), PAIRS)
@pytest.mark.parametrize(("fault", "outcome"), [
    ({"kind": "status", "status": 500}, "server_error"),
    ({"kind": "status", "status": 503}, "server_error"),
    ({"kind": "status", "status": 429}, "rate_limited"),
    ({"kind": "reset"}, "connection_error"),
    ({"kind": "garbage"}, "bad_response"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_fallback_on_fault(emu: EmulatorServer, start: Start, primary: str, backup: str, fault: dict[str, Any],
                                 outcome: str, stream: bool) -> None:
    sc = await start([fallback_route(emu, primary, backup)])
    emu.fault(provider=primary, **fault)
    if stream:
        chunks = [c async for c in await sc.client.chat.completions.create(model="r", messages=MSG, stream=True)]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        resp = await sc.client.chat.completions.create(model="r", messages=MSG)
        text = resp.choices[0].message.content or ""
    assert text == f"[{backup}:{MODELS[backup]}] ping"
    assert (await attempts(sc))["primary"] == {outcome: 1}


async def test_anthropic_529_overloaded_falls_back(emu: EmulatorServer, start: Start) -> None:
    sc = await start([fallback_route(emu, "anthropic", "openai")])
    emu.fault(kind="status", status=529, provider="anthropic")
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG)
    assert raw.headers["x-modelroute-target"] == "backup"
    assert (await attempts(sc))["primary"] == {"overloaded": 1}


@pytest.mark.parametrize(("primary", "backup"), PAIRS)
async def test_slow_target_times_out_and_falls_back(emu: EmulatorServer, start: Start, primary: str, backup: str) -> None:
    sc = await start([fallback_route(emu, primary, backup, primary_extra={"timeoutSeconds": 0.3})])
    emu.fault(kind="latency", latency_ms=1500, provider=primary)
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG)
    assert raw.headers["x-modelroute-target"] == "backup"
    assert (await attempts(sc))["primary"] == {"timeout": 1}


@pytest.mark.parametrize("stream", [False, True])
async def test_route_deadline_is_504(emu: EmulatorServer, start: Start, stream: bool) -> None:
    sc = await start([fallback_route(emu, "openai", "anthropic", timeoutSeconds=0.5)])
    emu.fault(kind="latency", latency_ms=1500)
    status, _, body = await sc.post({"model": "r", "messages": MSG, "stream": stream})
    assert status == 504
    err = json.loads(body)["error"]
    assert err["code"] == "deadline_exceeded" and err["attempts"][0]["target"] == "primary"
    with pytest.raises(openai.APIStatusError) as ei:
        await sc.client.chat.completions.create(model="r", messages=MSG)
    assert ei.value.status_code == 504


@pytest.mark.parametrize("stream", [False, True])
async def test_every_target_failing_is_503_with_attempts(emu: EmulatorServer, start: Start, stream: bool) -> None:
    sc = await start([fallback_route(emu, "openai", "anthropic")])
    emu.fault(kind="status", status=429, provider="openai")
    emu.fault(kind="status", status=503, provider="anthropic")
    status, _, body = await sc.post({"model": "r", "messages": MSG, "stream": stream})
    assert status == 503
    err = json.loads(body)["error"]
    assert err["code"] == "targets_exhausted"
    assert [(a["target"], a["status"], a["outcome"]) for a in err["attempts"]] == [
        ("primary", 429, "rate_limited"), ("backup", 503, "server_error")]
    assert "sk-" not in body.decode()


async def test_every_target_garbage_is_502(emu: EmulatorServer, start: Start) -> None:
    sc = await start([fallback_route(emu, "openai", "anthropic")])
    emu.fault(kind="garbage")
    status, _, body = await sc.post({"model": "r", "messages": MSG})
    assert status == 502
    assert json.loads(body)["error"]["code"] == "bad_upstream_response"


@pytest.mark.parametrize(("primary", "backup"), PAIRS)
async def test_client_error_is_returned_not_retried(emu: EmulatorServer, start: Start, primary: str, backup: str) -> None:
    sc = await start([fallback_route(emu, primary, backup)])
    emu.fault(kind="status", status=400, message="max_tokens: must be at most 8192", provider=primary)
    with pytest.raises(openai.BadRequestError) as ei:
        await sc.client.chat.completions.create(model="r", messages=MSG)
    assert "max_tokens: must be at most 8192" in ei.value.message
    assert emu.count(backup) == 0


@pytest.mark.parametrize(("primary", "backup"), PAIRS)
async def test_stream_cut_before_first_chunk_falls_back(emu: EmulatorServer, start: Start, primary: str, backup: str) -> None:
    sc = await start([fallback_route(emu, primary, backup)])
    emu.fault(kind="stream_cut", after_chunks=0, provider=primary)
    chunks = [c async for c in await sc.client.chat.completions.create(model="r", messages=MSG, stream=True)]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"[{backup}:{MODELS[backup]}] ping"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("kind", ["stream_cut", "stream_error"])
async def test_stream_failing_mid_way_ends_with_an_error(emu: EmulatorServer, start: Start, provider: str, kind: str) -> None:
    other = "anthropic" if provider != "anthropic" else "openai"
    sc = await start([fallback_route(emu, provider, other)])
    emu.fault(kind=kind, after_chunks=5, status=529 if provider == "anthropic" else 503, provider=provider)
    long: list[ChatCompletionMessageParam] = [{"role": "user", "content": "a b c d e f g h i j k l m n o p"}]
    # raw SSE: data frames, then an error event, and never [DONE]
    status, headers, body = await sc.post({"model": "r", "messages": long, "stream": True})
    assert status == 200 and headers["x-modelroute-target"] == "primary"
    events = [e for e in body.decode().split("\n\n") if e]
    assert "data: [DONE]" not in events
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["error"]["code"] == "stream_interrupted"
    assert emu.count(other) == 0  # past the first byte: no fallback
    # the real SDK raises instead of reporting a clean end
    stream = await sc.client.chat.completions.create(model="r", messages=long, stream=True)
    got: list[Any] = []

    async def consume() -> None:
        async for c in stream:
            got.append(c)

    with pytest.raises(openai.APIError):
        await consume()
    assert got  # some content arrived before the failure
    stats = await sc.stats()
    assert stats["routes"]["r"]["outcomes"].get("stream_error") == 2
