"""The real SDK adapters against a local stub server: answers, streams, and every failure mapped
to the right FailureKind; key rotation picked up without rebuilding the client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.providers.base import Adapter
from modelroute.sidecar.providers.registry import build_adapter

from .stub import Step, Stub, error_body

PROVIDERS = ["openai", "anthropic", "gemini"]
MODELS = {"openai": "gpt-x", "anthropic": "claude-x", "gemini": "gemini-x"}
REQ: dict[str, Any] = {"model": "route", "messages": [{"role": "user", "content": "hi"}]}
SREQ: dict[str, Any] = {**REQ, "stream": True, "stream_options": {"include_usage": True}}
KEY = "sk-test-key-1234567890abcdef"


@pytest.fixture(params=PROVIDERS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Stub, Adapter, list[str]]]:
    provider = request.param
    stub = await Stub(provider).start()
    keys = [KEY]
    target = Target(name="t", provider=provider, model=MODELS[provider], base_url=stub.url,
                    api_key={"env": "K"})
    adapter = build_adapter(target, lambda: keys[0])
    try:
        yield stub, adapter, keys
    finally:
        await adapter.aclose()
        await stub.stop()


async def call(adapter: Adapter, stream: bool, attempt_timeout: float) -> None:
    async with asyncio.timeout(attempt_timeout + 5):
        if stream:
            async for _ in adapter.stream(SREQ, timeout=attempt_timeout):
                pass
        else:
            await adapter.complete(REQ, timeout=attempt_timeout)


async def failure(adapter: Adapter, *, stream: bool = False, attempt_timeout: float = 5.0) -> UpstreamError:
    """The UpstreamError of one call; it must never carry the key."""
    with pytest.raises(UpstreamError) as info:
        await call(adapter, stream, attempt_timeout)
    e = info.value
    assert KEY not in str(e) and KEY not in repr(e.body)
    return e


async def test_answer(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    r = await adapter.complete(REQ, timeout=5)
    assert r["object"] == "chat.completion"
    assert r["choices"][0]["message"]["content"] == "hello"
    assert r["choices"][0]["finish_reason"] == "stop"
    assert r["usage"]["prompt_tokens"] == 3
    assert stub.auth_values() == [f"Bearer {KEY}" if stub.provider != "gemini" else KEY]


async def test_stream(env: tuple[Stub, Adapter, list[str]]) -> None:
    _, adapter, _ = env
    chunks = [c async for c in adapter.stream(SREQ, timeout=5)]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text.startswith("hello")
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 3


async def test_429_with_retry_after(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("status", 429, {"retry-after": "7"})]
    e = await failure(adapter)
    assert (e.kind, e.status, e.retry_after) == (FailureKind.RATE_LIMITED, 429, 7.0)


async def test_429_with_retry_after_ms(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("status", 429, {"retry-after-ms": "1500", "retry-after": "9"})]
    e = await failure(adapter)
    assert e.kind is FailureKind.RATE_LIMITED
    assert e.retry_after == pytest.approx(1.5)


async def test_529_overloaded(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("status", 529)]
    e = await failure(adapter)
    assert (e.kind, e.status) == (FailureKind.OVERLOADED, 529)


async def test_500_server(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("status", 500)]
    e = await failure(adapter)
    assert (e.kind, e.status) == (FailureKind.SERVER, 500)


async def test_400_is_client_with_provider_body(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    body = error_body(stub.provider, 400, "messages: field required")
    stub.plan = [Step("status", 400, body=body)]
    e = await failure(adapter)
    assert (e.kind, e.status) == (FailureKind.CLIENT, 400)
    assert e.body == body


async def test_401_falls_back_and_never_leaks_the_key(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("status", 401, body=error_body(stub.provider, 401, f"Incorrect API key provided: {KEY}"))]
    e = await failure(adapter)
    assert e.kind is FailureKind.SERVER and e.status == 401


async def test_gemini_bad_key_400_falls_back() -> None:
    """Gemini answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID: the target is wrong, not the request."""
    stub = await Stub("gemini").start()
    body = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                   "domain": "googleapis.com"}]}}
    adapter = build_adapter(Target(name="t", provider="gemini", model="gemini-x", base_url=stub.url, api_key={"env": "K"}),
                            lambda: KEY)
    try:
        stub.plan = [Step("status", 400, body=body), Step("status", 400)]
        e = await failure(adapter)
        assert e.kind is FailureKind.SERVER and e.status == 400
        e = await failure(adapter)  # a plain INVALID_ARGUMENT is the request's fault: back to the app
        assert e.kind is FailureKind.CLIENT
    finally:
        await adapter.aclose()
        await stub.stop()


async def test_timeout(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("hang")]
    t = time.perf_counter()
    e = await failure(adapter, attempt_timeout=0.3)
    assert e.kind is FailureKind.TIMEOUT
    assert time.perf_counter() - t < 3


async def test_stream_timeout_waiting_for_the_answer(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("hang")]
    t = time.perf_counter()
    e = await failure(adapter, stream=True, attempt_timeout=0.3)
    assert e.kind is FailureKind.TIMEOUT
    assert time.perf_counter() - t < 3
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the watch's cancellation was taken back


async def test_stream_stalled_mid_answer_times_out(env: tuple[Stub, Adapter, list[str]]) -> None:
    """Each read of a streamed answer is bounded by the attempt timeout (one watch per stream, not aiohttp's sock_read)."""
    stub, adapter, _ = env
    stub.plan = [Step("stall", after=1)]
    got: list[dict[str, Any]] = []

    async def consume() -> None:
        async with asyncio.timeout(5):
            async for c in adapter.stream(SREQ, timeout=0.3):
                got.append(c)

    t = time.perf_counter()
    with pytest.raises(UpstreamError) as info:
        await consume()
    assert info.value.kind is FailureKind.TIMEOUT
    assert got  # what came before the stall was relayed
    assert time.perf_counter() - t < 3
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_cancelled_stream_read_is_not_a_timeout(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("stall", after=1)]
    reading = asyncio.Event()

    async def consume() -> None:
        async for _ in adapter.stream(SREQ, timeout=30):
            reading.set()

    task = asyncio.create_task(consume())
    await reading.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_connection_reset(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("reset")]
    t = time.perf_counter()
    e = await failure(adapter)
    assert e.kind is FailureKind.CONNECTION
    assert time.perf_counter() - t < 1  # no SDK-internal retry or sleep


async def test_connection_refused() -> None:
    for provider in PROVIDERS:
        target = Target(name="t", provider=provider, model=MODELS[provider], base_url="http://127.0.0.1:9",
                        api_key={"env": "K"})
        adapter = build_adapter(target, lambda: KEY)
        try:
            t = time.perf_counter()
            e = await failure(adapter)
            assert e.kind is FailureKind.CONNECTION, provider
            assert time.perf_counter() - t < 1, provider
        finally:
            await adapter.aclose()


async def test_garbage_body(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("garbage")]
    e = await failure(adapter)
    assert e.kind is FailureKind.BAD_RESPONSE


async def test_wrong_shape_body(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("shape")]
    e = await failure(adapter)
    assert e.kind is FailureKind.BAD_RESPONSE


async def test_stream_status_error_before_first_chunk(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("status", 429, {"retry-after": "2"})]
    e = await failure(adapter, stream=True)
    assert (e.kind, e.retry_after) == (FailureKind.RATE_LIMITED, 2.0)


async def test_stream_cut_is_not_a_clean_end(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("cut")]
    e = await failure(adapter, stream=True)
    assert e.kind in (FailureKind.CONNECTION, FailureKind.BAD_RESPONSE)


async def test_stream_error_event(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    stub.plan = [Step("error_event")]
    e = await failure(adapter, stream=True)
    expected = {"anthropic": FailureKind.OVERLOADED, "gemini": FailureKind.SERVER, "openai": FailureKind.SERVER}
    assert e.kind is expected[stub.provider]


async def test_key_rotation_is_picked_up_on_the_same_pool(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, keys = env
    await adapter.complete(REQ, timeout=5)
    keys[0] = "sk-rotated-key-0987654321"
    await adapter.complete(REQ, timeout=5)
    [c async for c in adapter.stream(SREQ, timeout=5)]
    auth = stub.auth_values()
    assert KEY in auth[0]
    assert "sk-rotated-key-0987654321" in auth[1]
    assert "sk-rotated-key-0987654321" in auth[2]


SDK_HEADERS = {
    "openai": {"user-agent": "AsyncOpenAI/Python", "x-stainless-lang": "python"},
    "anthropic": {"user-agent": "AsyncAnthropic/Python", "anthropic-version": "20"},
    "gemini": {"user-agent": "google-genai-sdk/", "x-goog-api-client": "google-genai-sdk/"},
}


async def test_the_sdk_built_the_request_the_transport_sent(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    await adapter.complete(REQ, timeout=5)
    [c async for c in adapter.stream(SREQ, timeout=5)]
    for headers, _body in stub.seen:
        for name, prefix in SDK_HEADERS[stub.provider].items():
            assert headers.get(name, "").startswith(prefix), (name, headers.get(name))
        assert "x-stainless-read-timeout" not in headers and "x-stainless-raw-response" not in headers
        assert headers["content-type"].startswith("application/json")
    if stub.provider == "gemini":  # the SDK converted its types into the REST body (camelCase)
        assert stub.seen[0][1]["contents"] == [{"parts": [{"text": "hi"}], "role": "user"}]
    else:
        assert stub.seen[0][1]["model"] == MODELS[stub.provider]


async def test_header_observers_see_error_answers_too(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    seen: list[str | None] = []
    transport: Any = adapter.transport  # type: ignore[attr-defined]
    assert transport.observe_headers("t", lambda h: seen.append(h.get("x-ratelimit-remaining-requests")))
    assert not transport.observe_headers("t", lambda h: None)  # one observer per key
    stub.plan = [Step("status", status=429, headers={"x-ratelimit-remaining-requests": "0", "retry-after": "1"}),
                 Step("ok")]
    e = await failure(adapter)
    assert e.kind is FailureKind.RATE_LIMITED and e.retry_after == 1.0
    await adapter.complete(REQ, timeout=5)
    assert seen == ["0", None]


async def test_streams_and_answers_reuse_one_connection(env: tuple[Stub, Adapter, list[str]]) -> None:
    stub, adapter, _ = env
    for _ in range(2):
        [c async for c in adapter.stream(SREQ, timeout=5)]
        await adapter.complete(REQ, timeout=5)
    assert len(set(stub.peers)) == 1, stub.peers  # every call on the first connection, streams included
