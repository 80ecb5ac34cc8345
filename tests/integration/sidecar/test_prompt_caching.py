"""Prompt caching end to end: the real SDKs -> sidecar -> strict emulators (docs/prompt-caching.md).

Anthropic ``cache_control`` marks reach Anthropic targets unchanged and are dropped for other
targets; ``x-modelroute-prompt-cache`` adds them for any app; every inbound API reports the cached
tokens in its own usage fields; cost prices cache reads and writes apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import route, target

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
DOC = " ".join(f"w{i}" for i in range(1500))  # 1500 tokens in the emulators (words)
EPH: Any = {"type": "ephemeral"}
TOOL: Any = {"name": "lookup", "description": "look up", "input_schema": {"type": "object", "properties": {}},
             "cache_control": EPH}
ONE_USER: Any = [{"role": "user", "content": [{"type": "text", "text": "one two three", "cache_control": EPH}]}]


def anthropic_client(sc: Running) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=sc.sidecar.inbound_url, api_key="unused", max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_app_marks_reach_anthropic_unchanged(emu: EmulatorServer, start: Start, stream: bool) -> None:
    sc = await start([route("r", [target(emu, "anthropic")])])
    client = anthropic_client(sc)
    system: Any = [{"type": "text", "text": "Be brief."}, {"type": "text", "text": DOC, "cache_control": EPH}]
    usages = []
    for _ in range(2):
        if stream:
            async with client.messages.stream(model="r", max_tokens=32, system=system, tools=[TOOL], messages=ONE_USER) as s:
                usages.append((await s.get_final_message()).usage)
        else:
            usages.append((await client.messages.create(model="r", max_tokens=32, system=system, tools=[TOOL],
                                                        messages=ONE_USER)).usage)
    sent = emu.requests("anthropic")[-1].body
    assert sent["system"] == system and sent["tools"] == [TOOL] and sent["messages"] == ONE_USER
    first, second = usages
    # the last breakpoint (the user turn) covers Be brief. + DOC + one two three = 2 + 1500 + 3
    assert (first.cache_creation_input_tokens, first.input_tokens) == (1505, 0) and not first.cache_read_input_tokens
    assert (second.cache_read_input_tokens, second.input_tokens) == (1505, 0)
    assert not second.cache_creation_input_tokens
    await client.close()


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_anthropic_app_marks_dropped_for_other_providers(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("r", [target(emu, provider)])])
    client = anthropic_client(sc)
    system: Any = [{"type": "text", "text": DOC, "cache_control": EPH}]
    usages = [(await client.messages.create(model="r", max_tokens=32, system=system, tools=[TOOL], messages=ONE_USER,
                                            cache_control=EPH)).usage for _ in range(2)]
    assert "cache_control" not in repr(emu.requests(provider)[-1].body)
    # the provider cached the prefix by itself; the Anthropic app reads it as cache_read_input_tokens
    cached = 1408 if provider == "openai" else 1503  # the whole repeated prompt; OpenAI reports 1024 + a multiple of 128
    assert (usages[1].cache_read_input_tokens, usages[1].input_tokens) == (cached, 1503 - cached)
    assert not usages[0].cache_read_input_tokens and not usages[1].cache_creation_input_tokens
    await client.close()


async def test_openai_app_asks_with_the_header(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "anthropic")])])
    messages: Any = [{"role": "system", "content": DOC}, {"role": "user", "content": "hello"}]
    headers = {"x-modelroute-prompt-cache": "system"}
    first = await sc.client.chat.completions.create(model="r", messages=messages, extra_headers=headers)
    sent = emu.requests("anthropic")[-1].body
    assert sent["system"] == [{"type": "text", "text": DOC, "cache_control": EPH}]
    assert sent["messages"] == [{"role": "user", "content": "hello"}]
    stream = await sc.client.chat.completions.create(model="r", messages=messages, extra_headers=headers, stream=True,
                                                     stream_options={"include_usage": True})
    usage = [c.usage async for c in stream if c.usage is not None][-1]
    assert first.usage is not None and first.usage.prompt_tokens_details is not None
    # OpenAI's shape: prompt_tokens includes the cached and written tokens
    assert (first.usage.prompt_tokens, first.usage.prompt_tokens_details.cached_tokens) == (1501, 0)
    assert usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens) == (1501, 1500)

    with pytest.raises(openai.BadRequestError, match="x-modelroute-prompt-cache: unknown value 'everything'"):
        await sc.client.chat.completions.create(model="r", messages=messages,
                                                extra_headers={"x-modelroute-prompt-cache": "everything"})


async def test_openai_app_on_openai_reads_cached_tokens(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai")])])
    messages: Any = [{"role": "system", "content": DOC}, {"role": "user", "content": "hello"}]
    first = await sc.client.chat.completions.create(model="r", messages=messages, extra_headers={"x-modelroute-prompt-cache": "all"})
    second = await sc.client.chat.completions.create(model="r", messages=messages)
    assert "cache_control" not in repr(emu.requests("openai")[0].body)  # the header's marks never reach OpenAI
    assert first.usage is not None and second.usage is not None and second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens == 1408 and second.usage.prompt_tokens == 1501
    resp = await sc.client.responses.create(model="r", input="hello", instructions=DOC)
    resp = await sc.client.responses.create(model="r", input="hello", instructions=DOC)
    assert resp.usage is not None and resp.usage.input_tokens_details.cached_tokens == 1408


@pytest.mark.parametrize("provider", ["gemini", "anthropic"])
async def test_gemini_app_reads_cached_content_token_count(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("r", [target(emu, provider)])])
    client = genai.Client(api_key="unused", http_options={"base_url": sc.sidecar.inbound_url,
                                                         "headers": {"x-modelroute-prompt-cache": "system"}})
    config = types.GenerateContentConfig(system_instruction=DOC)
    await client.aio.models.generate_content(model="r", contents="hello", config=config)
    second = await client.aio.models.generate_content(model="r", contents="again", config=config)
    assert second.usage_metadata is not None
    assert (second.usage_metadata.cached_content_token_count, second.usage_metadata.prompt_token_count) == (1500, 1501)
    chunks = [c async for c in await client.aio.models.generate_content_stream(model="r", contents="hi", config=config)]
    assert chunks[-1].usage_metadata is not None and chunks[-1].usage_metadata.cached_content_token_count == 1500
    await client.aio.aclose()


async def test_cost_prices_cache_reads_and_writes(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "anthropic")])])  # claude-haiku-4-5: $1 in, $5 out, $1.25 write, $0.10 read
    client = anthropic_client(sc)
    system: Any = [{"type": "text", "text": DOC, "cache_control": EPH}]
    usages = [(await client.messages.create(model="r", max_tokens=32, system=system,
                                            messages=[{"role": "user", "content": "hi"}])).usage for _ in range(2)]
    assert [(u.input_tokens, u.cache_creation_input_tokens or 0, u.cache_read_input_tokens or 0) for u in usages] == \
        [(1, 1500, 0), (1, 0, 1500)]
    out = sum(u.output_tokens for u in usages)
    expected = (2 * 1.00 + 1500 * 1.25 + 1500 * 0.10 + out * 5.00) / 1e6
    stats = await sc.stats()
    assert stats["routes"]["r"]["cost"]["totalUsd"] == pytest.approx(expected, abs=1e-9)
    await client.close()


async def test_one_hour_breakpoints_from_the_header_cost_twice_the_input(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "anthropic")])])
    messages: Any = [{"role": "system", "content": DOC}, {"role": "user", "content": "hello"}]
    done = await sc.client.chat.completions.create(model="r", messages=messages,
                                                   extra_headers={"x-modelroute-prompt-cache": "system,ttl=1h"})
    assert emu.requests("anthropic")[-1].body["system"] == [{"type": "text", "text": DOC,
                                                             "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    assert done.usage is not None and done.usage.prompt_tokens_details is not None
    assert done.usage.model_dump()["prompt_tokens_details"]["cache_write_1h_tokens"] == 1500
    expected = (1 * 1.00 + 1500 * 2.00 + done.usage.completion_tokens * 5.00) / 1e6
    assert (await sc.stats())["routes"]["r"]["cost"]["totalUsd"] == pytest.approx(expected, abs=1e-9)
