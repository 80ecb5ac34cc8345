"""Apps on the anthropic and google-genai SDKs reach the same routes (any provider behind them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pytest
from google import genai
from google.genai import errors as genai_errors

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sdkviews import text_of
from modelroute.testing.sidecars import MODELS, route, target

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
PROVIDERS = ["openai", "anthropic", "gemini"]


def anthropic_client(sc: Running) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=sc.sidecar.inbound_url, api_key="unused", max_retries=0)


def gemini_client(sc: Running) -> genai.Client:
    return genai.Client(api_key="unused", http_options={"base_url": sc.sidecar.inbound_url})


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_anthropic_sdk_app(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("r", [target(emu, provider)])])
    client = anthropic_client(sc)
    msg = await client.messages.create(model="r", max_tokens=64, messages=[{"role": "user", "content": "hello"}])
    assert text_of(msg.content[0]) == f"[{provider}:{MODELS[provider]}] hello"
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens > 0
    text = ""
    async with client.messages.stream(model="r", max_tokens=64, messages=[{"role": "user", "content": "one two"}]) as s:
        async for t in s.text_stream:
            text += t
        final = await s.get_final_message()
    assert text == f"[{provider}:{MODELS[provider]}] one two"
    assert final.stop_reason == "end_turn"
    await client.close()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_gemini_sdk_app(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("r", [target(emu, provider)])])
    client = gemini_client(sc)
    resp = await client.aio.models.generate_content(model="r", contents="hello")
    assert resp.text == f"[{provider}:{MODELS[provider]}] hello"
    chunks = [c async for c in await client.aio.models.generate_content_stream(model="r", contents="one two")]
    assert "".join(c.text or "" for c in chunks) == f"[{provider}:{MODELS[provider]}] one two"
    assert chunks[-1].usage_metadata is not None


async def test_native_errors(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai")])])
    with pytest.raises(anthropic.NotFoundError) as nf:
        await anthropic_client(sc).messages.create(model="nope", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert "known routes: r" in str(nf.value)
    with pytest.raises(genai_errors.ClientError) as ce:
        await gemini_client(sc).aio.models.generate_content(model="nope", contents="x")
    assert ce.value.code == 404


@pytest.mark.parametrize("kind", ["stream_cut", "stream_error"])
async def test_native_streams_failing_mid_way_raise(emu: EmulatorServer, start: Start, kind: str) -> None:
    sc = await start([route("r", [target(emu, "openai")])])
    emu.fault(kind=kind, after_chunks=5, status=503, provider="openai")
    got: list[Any] = []

    async def consume_anthropic() -> None:
        async with anthropic_client(sc).messages.stream(
                model="r", max_tokens=64, messages=[{"role": "user", "content": "a b c d e f g h"}]) as s:
            async for t in s.text_stream:
                got.append(t)

    with pytest.raises(anthropic.APIError):
        await consume_anthropic()

    async def consume_gemini() -> None:
        async for c in await gemini_client(sc).aio.models.generate_content_stream(model="r", contents="a b c d e f g h"):
            got.append(c)

    with pytest.raises(genai_errors.APIError):
        await consume_gemini()
