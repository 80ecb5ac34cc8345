"""Prompt caching in the emulators (promptcache.py), read through the real SDKs: what each provider reports."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from modelroute.testing.emulators import EmulatorServer
from modelroute.testing.emulators.promptcache import MIN_TOKENS

DOC = " ".join(f"w{i}" for i in range(1500))  # 1500 tokens (words)
EPH: Any = {"type": "ephemeral"}


async def test_anthropic_writes_then_reads_a_marked_system_prompt(anth: anthropic.AsyncAnthropic) -> None:
    system: Any = [{"type": "text", "text": DOC, "cache_control": EPH}]
    msgs: Any = [{"role": "user", "content": "one two three"}]
    first = await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, system=system, messages=msgs)
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens, first.usage.input_tokens) == (1500, 0, 3)
    second = await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, system=system,
                                        messages=[{"role": "user", "content": "four five"}])
    assert (second.usage.cache_creation_input_tokens, second.usage.cache_read_input_tokens, second.usage.input_tokens) == (0, 1500, 2)
    other_model = await anth.messages.create(model="claude-sonnet-4-6", max_tokens=16, system=system, messages=msgs)
    assert other_model.usage.cache_read_input_tokens == 0 and other_model.usage.cache_creation_input_tokens == 1500


async def test_anthropic_reports_one_hour_writes(anth: anthropic.AsyncAnthropic) -> None:
    system: Any = [{"type": "text", "text": DOC, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    m = await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, system=system, messages=[{"role": "user", "content": "hi"}])
    assert m.usage.cache_creation is not None
    assert (m.usage.cache_creation.ephemeral_1h_input_tokens, m.usage.cache_creation.ephemeral_5m_input_tokens) == (1500, 0)


async def test_anthropic_no_marks_no_cache_and_short_prefixes_not_written(anth: anthropic.AsyncAnthropic) -> None:
    for _ in range(2):
        plain = await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, system=DOC,
                                           messages=[{"role": "user", "content": "hi"}])
        assert (plain.usage.cache_creation_input_tokens, plain.usage.cache_read_input_tokens, plain.usage.input_tokens) == (0, 0, 1501)
    short: Any = [{"type": "text", "text": "tiny system prompt", "cache_control": EPH}]
    for _ in range(2):
        m = await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, system=short,
                                       messages=[{"role": "user", "content": "hi"}])
        assert (m.usage.cache_creation_input_tokens, m.usage.cache_read_input_tokens) == (0, 0)


async def test_anthropic_multi_turn_reads_the_previous_breakpoint_streaming(anth: anthropic.AsyncAnthropic) -> None:
    turn1: Any = [{"role": "user", "content": [{"type": "text", "text": DOC, "cache_control": EPH}]}]
    first = await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=turn1)
    assert first.usage.cache_creation_input_tokens == 1500
    turn2: Any = [{"role": "user", "content": [{"type": "text", "text": DOC}]},
                  {"role": "assistant", "content": "ok then"},
                  {"role": "user", "content": [{"type": "text", "text": "and more words", "cache_control": EPH}]}]
    stream = await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=turn2, stream=True)
    events = [e async for e in stream]
    start = events[0]
    assert start.type == "message_start"
    usage = start.message.usage
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens, usage.input_tokens) == (1500, 5, 0)


async def test_anthropic_top_level_cache_control_and_the_breakpoint_limit(anth: anthropic.AsyncAnthropic) -> None:
    msgs: Any = [{"role": "user", "content": DOC}]
    first = await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=msgs, cache_control=EPH)
    assert first.usage.cache_creation_input_tokens == 1500
    again = await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=msgs, cache_control=EPH)
    assert again.usage.cache_read_input_tokens == 1500
    five: Any = [{"type": "text", "text": f"part {i}", "cache_control": EPH} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError, match=r"A maximum of 4 blocks with cache_control may be provided\. Found 5\."):
        await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, system=five, messages=msgs)
    with pytest.raises(anthropic.BadRequestError, match=r"system\.0\.cache_control\.ttl"):
        await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=msgs,
                                   system=[{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "2h"}}])  # type: ignore[typeddict-item]


async def test_openai_caches_repeated_prefixes_from_1024_tokens(oai: openai.AsyncOpenAI) -> None:
    msgs: Any = [{"role": "system", "content": DOC}, {"role": "user", "content": "hello"}]
    first = await oai.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    assert first.usage is not None and first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens == 1501 and first.usage.prompt_tokens_details.cached_tokens == 0
    second = await oai.chat.completions.create(model="gpt-4o-mini", messages=[msgs[0], {"role": "user", "content": "bye"}])
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    # the system message's prefix (1500) as OpenAI reports it: 1024 + a multiple of 128 (and included in prompt_tokens)
    assert (second.usage.prompt_tokens, second.usage.prompt_tokens_details.cached_tokens) == (1501, 1024 + 3 * 128)
    short: Any = [{"role": "system", "content": "short"}, {"role": "user", "content": "hi"}]
    for _ in range(2):
        r = await oai.chat.completions.create(model="gpt-4o-mini", messages=short)
        assert r.usage is not None and r.usage.prompt_tokens_details is not None
        assert r.usage.prompt_tokens_details.cached_tokens == 0  # below MIN_TOKENS
    assert MIN_TOKENS == 1024


async def test_openai_responses_reports_cached_input_tokens(oai: openai.AsyncOpenAI) -> None:
    for expected in (0, 1408):
        r = await oai.responses.create(model="gpt-4o-mini", instructions=DOC, input="hello")
        assert r.usage is not None and r.usage.input_tokens_details.cached_tokens == expected


async def test_gemini_reports_cached_content_token_count(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(system_instruction=DOC)
    first = await gem.aio.models.generate_content(model="gemini-2.5-flash", contents="hello", config=config)
    assert first.usage_metadata is not None and first.usage_metadata.cached_content_token_count is None
    second = await gem.aio.models.generate_content(model="gemini-2.5-flash", contents="again", config=config)
    assert second.usage_metadata is not None
    assert (second.usage_metadata.cached_content_token_count, second.usage_metadata.prompt_token_count) == (1500, 1501)
    chunks = [c async for c in await gem.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="x", config=config)]
    assert chunks[-1].usage_metadata is not None and chunks[-1].usage_metadata.cached_content_token_count == 1500


async def test_reset_forgets_the_cache(emu: EmulatorServer, anth: anthropic.AsyncAnthropic) -> None:
    system: Any = [{"type": "text", "text": DOC, "cache_control": EPH}]
    msgs: Any = [{"role": "user", "content": "hi"}]
    await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, system=system, messages=msgs)
    emu.state.reset()
    again = await anth.messages.create(model="claude-haiku-4-5", max_tokens=16, system=system, messages=msgs)
    assert again.usage.cache_creation_input_tokens == 1500 and again.usage.cache_read_input_tokens == 0
